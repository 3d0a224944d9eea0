"""What the analyzers share about the repository being scanned.

The scanner reads go.mod files first, so that every analyzer can check
settings against the module paths the repository actually requires, and
records where golang images are used, so that go.mod can be checked against
the Go version that builds it. Sourced files are read through
:meth:`RepoContext.read`, relative to the scanned root, and never outside it.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

from modgate.doctor.analyzers.goenv import ModuleRef
from modgate.doctor.report import Reporter

MAX_SOURCED_BYTES = 1 << 20
"""A sourced file larger than this is not read (it is not an env file)."""


@dataclass(frozen=True, slots=True)
class GolangImage:
    """A golang image that builds the repository, and the Go version its tag names.

    A Dockerfile stage, a Kubernetes container, a CI job's image (GitHub Actions
    ``container:``, GitLab ``image:``, a Jenkins docker agent): ``file`` and ``line``
    say where the image is named.
    """

    file: str
    line: int
    reference: str
    version: str
    """``1.23`` or ``1.23.4``: a tag without a patch release floats over patches."""


@dataclass(slots=True)
class RepoContext:
    root: Path
    report: Reporter
    modules: list[ModuleRef] = field(default_factory=list)
    """Each module path named by a go.mod, once (where it is first named)."""
    golang_images: list[GolangImage] = field(default_factory=list)
    go_lines: dict[str, tuple[str, int]] = field(default_factory=dict)
    """go.mod path -> its go line (version, line), for fixes that name an image."""
    unvendored: set[str] = field(default_factory=set)
    """go.mod files that require modules and have no vendor/modules.txt beside them."""
    context_copies: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    """(Dockerfile, sources) of every COPY/ADD from the build context."""
    build_files: list[str] = field(default_factory=list)
    """Makefiles, bake files and scripts that may pass ``--build-arg`` to a build."""
    _texts: dict[str, str | None] = field(default_factory=dict)
    _build_args: dict[str, bool] = field(default_factory=dict)
    _module_paths: set[str] = field(default_factory=set)

    def add_modules(self, refs: list[ModuleRef]) -> None:
        for ref in refs:
            if ref.path not in self._module_paths:
                self._module_paths.add(ref.path)
                self.modules.append(ref)

    def gomod_for(self, file: str) -> str | None:
        """The go.mod that builds ``file``: the nearest at or above it, or the only one."""
        directory = posixpath.dirname(file)
        while True:
            candidate = posixpath.join(directory, "go.mod") if directory else "go.mod"
            if candidate in self.go_lines or candidate in self.unvendored:
                return candidate
            if not directory:
                break
            directory = posixpath.dirname(directory)
        return next(iter(self.go_lines)) if len(self.go_lines) == 1 else None

    def go_line_for(self, file: str) -> tuple[str, str] | None:
        """(go version, go.mod path) of the go.mod that builds ``file``, when known."""
        gomod = self.gomod_for(file)
        if gomod is None:
            return None
        return self.go_lines[gomod][0], gomod

    def passes_build_arg(self, name: str) -> bool:
        """Whether any build file or CI file of the repository sets the build ARG ``name``."""
        if name not in self._build_args:
            self._build_args[name] = self._search_build_arg(name)
        return self._build_args[name]

    def _search_build_arg(self, name: str) -> bool:
        flag = re.compile(r"--build-arg[= ]+[\"']?" + re.escape(name) + r"\b")
        listed = re.compile(r"^[\s\-\"']*" + re.escape(name) + r"\s*[=:]", re.MULTILINE)
        for relative in self.build_files:
            text = self.read(relative)
            if text is None:
                continue
            if flag.search(text):
                return True
            lists_args = "build-args" in text or posixpath.basename(relative).startswith(
                ("docker-bake", "docker-compose", "compose.")
            )
            if lists_args and listed.search(text):
                return True
        return False

    def read(self, relative: str) -> str | None:
        """The text of a file under the root (POSIX relative path), or None."""
        relative = posixpath.normpath(relative)
        if relative.startswith("../") or relative == ".." or posixpath.isabs(relative):
            return None
        if relative not in self._texts:
            path = self.root / relative
            try:
                if not path.is_file() or path.stat().st_size > MAX_SOURCED_BYTES:
                    self._texts[relative] = None
                else:
                    self._texts[relative] = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                self._texts[relative] = None
        return self._texts[relative]

    def remember(self, relative: str, text: str) -> None:
        self._texts[relative] = text

    def resolve(self, from_file: str, reference: str) -> str | None:
        """A repository path for ``reference`` as seen from ``from_file``, if it exists."""
        reference = reference.strip()
        if not reference or "$" in reference or reference.startswith(("/", "~")):
            return None
        here = posixpath.dirname(from_file)
        for candidate in (posixpath.join(here, reference), reference):
            normal = posixpath.normpath(candidate)
            if self.read(normal) is not None:
                return normal
        return None
