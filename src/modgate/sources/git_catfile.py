"""Long-lived ``git cat-file`` processes: objects and object sizes without a process each.

Starting git costs a millisecond or more; a mirror keeps one
``git cat-file --batch`` (object contents) and one ``--batch-check`` (type
and size) running and talks to them over pipes. Size queries are pipelined:
a chunk of names is written, then the answers are read, small enough that
neither pipe can fill while the other side waits. A process that died or
answered nonsense is restarted once; then the read fails as a
:class:`~modgate.sources.git_cmd.GitError`. git finds objects a fetch added
after the process started (it rescans its packs on a miss).
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from modgate.sources.git_cmd import GitError, GitRunner, kill_group

HEADER_MAX = 4096
Header = tuple[str, str, int]
"""``<oid> <type> <size>`` of an object cat-file found."""
T = TypeVar("T")
CHUNK = 256
"""Names per pipelined query at most, so that answers to a size query fit a pipe buffer."""
CHUNK_BYTES = 16 * 1024
"""Bytes of names per pipelined query at most: the request always fits a pipe buffer, so
writing it never waits for git, which may itself be waiting for its answers to be read."""


@dataclass(frozen=True, slots=True)
class GitObject:
    oid: str
    type: str
    data: bytes


class CatFile:
    """One ``git cat-file --batch`` (or ``--batch-check``) on ``git_dir``; thread-safe."""

    def __init__(self, runner: GitRunner, git_dir: Path, *, check: bool = False) -> None:
        self.runner = runner
        self.git_dir = git_dir
        self.check = check
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def read(self, name: str) -> GitObject | None:
        """The object ``name`` (``<rev>^{commit}``, ``<hash>:<path>``), or None if absent."""
        return self.read_many([name])[0]

    def read_many(self, names: Sequence[str]) -> list[GitObject | None]:
        """:meth:`read` of each name, pipelined a chunk at a time (``--batch`` only)."""
        out: list[GitObject | None] = []
        for chunk in _chunks(names):
            out.extend(self._exchange(chunk, _read_object))
        return out

    def sizes(self, names: Sequence[str]) -> list[int | None]:
        """The size of each object in ``names`` (None where absent), in one pass per chunk."""
        out: list[int | None] = []
        for chunk in _chunks(names):
            out.extend(self._exchange(chunk, lambda found, _: found[2]))
        return out

    def _exchange(
        self, names: Sequence[str], answer: Callable[[Header, IO[bytes]], T]
    ) -> list[T | None]:
        """Ask for ``names`` in one write, then read each answer: ``answer(header, stdout)``.

        None for an invalid or absent name. A broken or confused process is
        restarted and asked once more; then a GitError is raised.
        """
        valid = [_valid(n) for n in names]
        request = _request(names, valid)
        with self._lock:
            for attempt in (1, 2):
                proc = self._process()
                try:
                    assert proc.stdin is not None and proc.stdout is not None
                    if request:
                        proc.stdin.write(request)
                        proc.stdin.flush()
                    out: list[T | None] = []
                    for ok in valid:
                        found = _header(proc.stdout.readline(HEADER_MAX)) if ok else None
                        out.append(answer(found, proc.stdout) if found is not None else None)
                    return out
                except (OSError, ValueError):
                    self._close()
                    if attempt == 2:
                        mode = "--batch-check" if self.check else "--batch"
                        raise GitError("read objects", f"git cat-file {mode} failed") from None
        return [None] * len(names)

    def close(self) -> None:
        with self._lock:
            self._close()

    def _process(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is not None:
            self._close()
        if self._proc is None:
            self._proc = self.runner.popen_batch(self.git_dir, check=self.check)
        return self._proc

    def _close(self) -> None:
        if self._proc is not None:
            proc, self._proc = self._proc, None
            with contextlib.suppress(OSError):
                if proc.stdin is not None:
                    proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1.0)
            if proc.poll() is None:
                kill_group(proc)
            if proc.stdout is not None:
                proc.stdout.close()
            self.runner.forget(proc)


def _chunks(names: Sequence[str]) -> Iterator[Sequence[str]]:
    """``names`` in order, cut into runs of at most CHUNK names and CHUNK_BYTES bytes."""
    start, size = 0, 0
    for i, name in enumerate(names):
        size += len(name) + 1
        if i > start and (i - start >= CHUNK or size > CHUNK_BYTES):
            yield names[start:i]
            start, size = i, len(name) + 1
    if start < len(names):
        yield names[start:]


def _request(names: Sequence[str], valid: Sequence[bool]) -> bytes:
    """The lines asking git cat-file for the valid ``names``, one name a line."""
    return b"".join(
        n.encode("utf-8", "surrogateescape") + b"\n"
        for n, ok in zip(names, valid, strict=True)
        if ok
    )


def _read_object(found: Header, stdout: IO[bytes]) -> GitObject:
    oid, kind, size = found
    data = stdout.read(size + 1)[:size]
    if len(data) != size:
        raise BrokenPipeError("git cat-file --batch output was cut short")
    return GitObject(oid, kind, data)


def _valid(name: str) -> bool:
    return bool(name) and "\n" not in name and "\r" not in name


def _header(line: bytes) -> Header | None:
    """``<oid> <type> <size>``; None for a missing or ambiguous name. Raises on nonsense."""
    if not line:
        raise BrokenPipeError("git cat-file ended")
    fields = line.split()
    if len(fields) != 3 or fields[-1] in (b"missing", b"ambiguous"):
        if fields and fields[-1] in (b"missing", b"ambiguous"):
            return None
        raise ValueError(f"unexpected git cat-file answer {line[:100]!r}")
    return fields[0].decode(), fields[1].decode(), int(fields[2])
