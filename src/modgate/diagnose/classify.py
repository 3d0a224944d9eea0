"""Read a log line by line and collect findings, with bounded memory.

The go command prints one failure as a header line and tab-indented
continuation lines (``server response:`` and the proxy's answer,
``downloaded:``/``go.sum:`` hashes, git's ``fatal:`` line). A
:class:`Diagnoser` therefore keeps a little state between lines:

- the *open* finding, to which continuation lines attach as evidence, kept
  open across a couple of unrelated lines (other processes' output
  interleaved with go's);
- whether the lines are the *body* of a proxy's answer, which is remote text:
  ``terminal prompts disabled`` there is the proxy failing to clone a private
  repository (a missing GOPRIVATE), not this build's git credentials;
- the last go error *header* without a cause of its own
  (``go: m@v: reading m/go.mod at revision v1: git ls-remote ...``), whose
  module the next classified line inherits;
- the last go *activity* (a download step or ``go: downloading`` line), so a
  CI timeout shortly after it reads as a hung proxy.

Everything else is a bounded count: findings (at most ``MAX_FINDINGS``),
evidence per finding, and the last error-looking lines for ``unknown``.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable

from modgate.diagnose.buildsteps import (
    BuildSteps,
    OtherFailure,
    has_test_marker,
    last_test_marker,
)
from modgate.diagnose.causes import CauseId
from modgate.diagnose.extract import extract_module
from modgate.diagnose.finding import DiagnosedFailure
from modgate.diagnose.gateway_answers import GATEWAY_CONFIDENCE, gateway_cause
from modgate.diagnose.normalize import MARK_ERROR, MARK_WARNING, normalize_parts
from modgate.diagnose.rank import rank
from modgate.diagnose.rules import classify_text
from modgate.diagnose.scan import COMPILER_ERROR, TIMEOUT_WORDS, Scanner, is_interesting
from modgate.diagnose.words import word_pattern
from modgate.protocol.module import ModuleVersion

MAX_FINDINGS = 64
MAX_UNKNOWN_EVIDENCE = 8
NOISE_TOLERANCE = 3
"""Unrelated lines allowed between a go error and its continuation lines."""
HEADER_REACH = 4
"""Lines after an uncaused go error header within which a cause still belongs to it."""
HUNG_REACH = 8
"""Lines between the last go download activity and a CI timeout marker for ``proxy-hung``."""
HUNG_CONFIDENCE = 0.6
UNKNOWN_CONFIDENCE = 0.2
UPGRADED_CONFIDENCE = 0.95
BODY_MEANING_CONFIDENCE = 0.9
"""A rule must be this sure of a proxy's answer line to change what the answer means."""

_SERVER_RESPONSE = "server response:"
_DOWNLOADING = "go: downloading "
_GO_MESSAGE = "go: "
_PROMPTS = re.compile(r"terminal prompts disabled|could not read (?:Username|Password)")
_NO_SUCH_REVISION = re.compile(r"\bunknown revision\b")
# Lines of a proxy's answer that lost their indentation (copied from a terminal).
_BODY_LINE = re.compile(
    r"^(?:not found: |gone: |fatal: |remote: |Confirm the import path|If this is a private repo)"
)
# An unexplained line that looks like a go module error: only these make an
# ``unknown`` finding (a compile error or a failing test is not a module problem).
_MODULE_ERRORISH = re.compile(
    r"^go(?::| get| mod \w+| install| list| build| run| work)\b.*: |^verifying |\S@v\d\S*: "
    r"|\bgo\.(?:mod|sum)\b"
)
_CONTINUATION = re.compile(
    r"^(?:SECURITY ERROR|This download does NOT match|The bits may have|have intercepted"
    r"|For more information, see|Confirm the import path|If this is a private repository"
    r"|To ignore the vendor|To sync the vendor|go mod (?:tidy|vendor|download)|go get )"
)
# BuildKit's error summary frames repeated output with these; they continue nothing.
_FRAME = re.compile(r"^(?:> \[|\d+ \| |-{4,}$|Dockerfile:\d+$)")
# Lines CI runners print about their own caches, whatever the build does.
_RUNNER_NOISE_STARTS = ("Failed to extract cache", "Restore cache failed")
_RUNNER_NOISE = "cache not found"
# A line that names a module@version and leaves the reason to the next lines: it
# ends with ':' ("...@v1.2.3: parsing go.mod:", an indented line of a requires or
# imports chain), or hands over to git's output ("...: invalid version: git ...").
_HEADER = re.compile(r"\S@v\d\S*: (?:.*:$|invalid version: git )")
_ACTIVITY = re.compile(
    r"^(?:Run |\$ |RUN |Step \d+/\d+ : RUN |\[[^\]]+\] RUN )?go (?:mod (?:download|tidy)"
    r"|build|get|install|list|vet|generate)\b|^go: (?:downloading|finding|extracting) "
    r"|^# get https?://"
)
_TIMEOUT = re.compile(
    r"The operation was canceled|exceeded the maximum execution time|execution took longer"
    r"|^CANCELED$|Canceled: context canceled|\bjob timed out|^Terminated$|timed out after \d"
)
# A line is a failure when it starts with one of these (``match``) ...
_FAILURE_START = re.compile(r"FAIL\b|--- FAIL|panic:")
# ... or holds one of these.
_FAILURE = (
    r"exit (?:code|status)[ :]+[1-9]|returned a non-zero code|did not complete successfully"
    r"|Job failed|" + COMPILER_ERROR.pattern
)
_FAILURE_ANYWHERE = re.compile(_FAILURE)
# A line without one of TIMEOUT_WORDS cannot match _TIMEOUT.
_TIMEOUT_WORD = re.compile(word_pattern(TIMEOUT_WORDS))
# Most lines hold neither such a word nor a failure pattern: one search tells
# (every branch starts with a literal character, so it skips fast).
_TIMEOUT_OR_FAILURE = re.compile(f"{word_pattern(TIMEOUT_WORDS)}|{_FAILURE}")
_ERRORISH = re.compile(
    r"(?i:\b(?:error|fatal|panic|failed|refused|denied|cannot|unable to)\b)|^FAIL\b|^--- FAIL"
)
_GO_INFO = re.compile(
    r"^go: (?:downloading|finding|extracting|found|added|upgraded|downgraded"
    r"|removed|creating|to add|warning)\b"
)
_FOLLOW_UP = frozenset({CauseId.PROXY_HTTP_ERROR, CauseId.PRIVATE_MODULE_IN_PUBLIC_SUMDB})
# Findings made from an HTTP status line: the answer's body may be a modgate gateway's.
_HTTP_ANSWER = _FOLLOW_UP | {CauseId.PROXY_AUTH, CauseId.UNKNOWN_REVISION}

Key = tuple[CauseId, ModuleVersion | None]


class Diagnoser:
    """Feed it the lines of one log, then ask for the ranked findings."""

    def __init__(self) -> None:
        self._findings: dict[Key, DiagnosedFailure] = {}
        self._open: DiagnosedFailure | None = None
        self._open_gap = 0
        self._body = False
        self._header: tuple[int, str, ModuleVersion | None] | None = None
        self._activity: tuple[int, str] | None = None
        self._errors: deque[tuple[int, str]] = deque(maxlen=MAX_UNKNOWN_EVIDENCE)
        self._failed = False
        self._failure_line = 0
        self._module_error = False
        self._steps = BuildSteps()
        self._skipped: tuple[str, int, int] | None = None
        """The last run of skipped lines, whose test markers are read only when needed."""
        self._number = 0

    # ------------------------------------------------------------------ input

    def feed(self, raw: str) -> None:
        """Take the next line of the log (with or without its line ending)."""
        self._number += 1
        if self._open is None and not is_interesting(raw):
            if has_test_marker(raw):
                self._steps.marker(normalize_parts(raw)[0])
            self._unrelated()
            return
        self._process(raw)

    def _process(self, raw: str) -> None:
        """Read a line that has a keyword, or any line while a finding is open."""
        text, mark, indented = normalize_parts(raw)
        if self._skipped is not None:
            # A go message resets the test state: the skipped markers no longer matter.
            if not text.startswith(_GO_MESSAGE):
                self._follow_markers(*self._skipped)
            self._skipped = None
        if not text:
            self._unrelated()
            return
        if (
            self._body
            and self._open is not None
            and (indented or _BODY_LINE.match(text))
            and not _FRAME.match(text)
        ):
            self._body_line(text)
            return
        if self._steps.program_output(self._number, text):
            # A test's own output: whatever it says, it is not a go message.
            self._unrelated()
            return
        if text.startswith(_DOWNLOADING):
            # The most common go line in a long log: activity, and nothing else.
            self._unrelated()
            self._activity = (self._number, text)
            return
        if text.startswith(_GO_MESSAGE) and not indented:
            # A new go message: whatever was open is complete.
            self._open = None
            self._body = False
        if text.startswith(_SERVER_RESPONSE) and self._open is not None:
            self._body = True
            self._body_line(text)
            return
        classified = classify_text(text)
        if classified is not None:
            self._classified(text, *classified)
            return
        if (
            self._open is not None
            and (indented or _CONTINUATION.match(text))
            and not _FRAME.match(text)
        ):
            self._continuation(self._open, text)
        else:
            self._unrelated()
            self._steps.unexplained(self._number, text)
        self._watch(text, mark)

    def feed_text(self, block: str) -> None:
        """Take the next lines of the log at once (``block`` ends at a line boundary).

        Same result as feeding its lines one by one, but runs of lines without
        any keyword are counted, not read, while no finding is open.
        """
        pos = 0
        size = len(block)
        scanner = Scanner(block)
        while pos < size:
            if self._open is None:
                start = scanner.next_line(pos)
                if start < 0:
                    self._skip_run(block, pos, size)
                    self._skip(block.count("\n", pos) + (0 if block.endswith("\n") else 1))
                    return
                if start > pos:
                    self._skip_run(block, pos, start)
                    self._skip(block.count("\n", pos, start))
                pos = start
            end = block.find("\n", pos)
            if end < 0:
                end = size
            if self._open is None:
                # The scanner found a keyword on this line: no need to look again.
                self._number += 1
                self._process(block[pos:end])
            else:
                self.feed(block[pos:end])
            pos = end + 1

    def feed_all(self, lines: Iterable[str]) -> Diagnoser:
        for line in lines:
            self.feed(line)
        return self

    # ------------------------------------------------------------------ output

    def findings(self) -> list[DiagnosedFailure]:
        """Every distinct failure, most likely root cause first.

        ``unknown`` when the log failed with a go module error no rule knows;
        none when it failed for another reason (see :meth:`other_failures`).
        """
        found = list(self._findings.values())
        if not found and self._failed and self._module_error:
            first = self._errors[0][0] if self._errors else self._failure_line
            unknown = DiagnosedFailure(CauseId.UNKNOWN, None, UNKNOWN_CONFIDENCE, first)
            for _number, text in self._errors:
                unknown.add_evidence(text)
            found.append(unknown)
        return rank(found)

    def other_failures(self) -> list[OtherFailure]:
        """Compile, vet and test failures seen (not module problems), first evidence of each."""
        return self._steps.failures

    # ------------------------------------------------------------------ state

    def _skip_run(self, block: str, start: int, end: int) -> None:
        """Remember a skipped run; its markers are followed before the next line is read."""
        if self._skipped is not None:
            self._follow_markers(*self._skipped)
        self._skipped = (block, start, end)

    def _follow_markers(self, block: str, start: int, end: int) -> None:
        """Lines ``block[start:end]`` are skipped: only their last test marker line matters."""
        while end > start:
            at = last_test_marker(block, start, end)
            if at < 0:
                return
            line_start = max(block.rfind("\n", start, at) + 1, start)
            line_end = block.find("\n", at, end)
            line = block[line_start : line_end if line_end >= 0 else end]
            if self._steps.marker(normalize_parts(line)[0]):
                return
            end = line_start  # a lookalike: the state comes from an earlier line

    def _skip(self, count: int) -> None:
        """``count`` lines without keywords went by (no finding is open)."""
        self._number += count

    def _unrelated(self) -> None:
        if self._open is not None:
            self._open_gap += 1
            if self._open_gap > NOISE_TOLERANCE:
                self._open = None
                self._body = False

    def _continuation(self, finding: DiagnosedFailure, text: str) -> None:
        """More of the open finding's message; it may name the module the header did not."""
        finding.add_evidence(text)
        self._open_gap = 0
        if finding.module is None:
            module = extract_module(text)
            if module is not None:
                self._open = self._rekey(finding, finding.cause, module)

    def _body_line(self, text: str) -> None:
        """A line of a proxy's answer: evidence, and maybe the real meaning of the error."""
        finding = self._open
        if finding is None:
            return
        finding.add_evidence(text)
        self._open_gap = 0
        if finding.cause in _HTTP_ANSWER:
            gateway = gateway_cause(text.removeprefix(_SERVER_RESPONSE).strip())
            if gateway is not None:
                # A modgate gateway said what happened, in its own words.
                target = self._rekey(finding, gateway, finding.module)
                target.confidence = max(target.confidence, GATEWAY_CONFIDENCE)
                return
        if finding.cause not in _FOLLOW_UP or not _not_found(finding):
            return
        # A 404/410 answer's body says what "not found" means.
        if _PROMPTS.search(text):
            # The public service could not clone a private repository.
            target = self._rekey(finding, CauseId.PRIVATE_MODULE_IN_PUBLIC_SUMDB, finding.module)
            target.confidence = max(target.confidence, UPGRADED_CONFIDENCE)
        elif finding.cause is CauseId.PROXY_HTTP_ERROR:
            meaning = _body_meaning(text)
            if meaning is not None:
                # The proxy tried the origin and says why it has nothing: no such tag,
                # or a go.mod that does not fit the version (a v2+ tag without /v2...).
                target = self._rekey(finding, meaning, finding.module)
                target.confidence = max(target.confidence, UPGRADED_CONFIDENCE)

    def _classified(
        self, text: str, cause: CauseId, confidence: float, module: ModuleVersion | None
    ) -> None:
        self._failed = True
        self._failure_line = self._failure_line or self._number
        header = self._header
        self._header = None
        inherited = (
            header is not None
            and self._number - header[0] <= HEADER_REACH
            and (module is None or module == header[2])
        )
        if inherited and header is not None:
            module = header[2]
        finding = self._record(
            cause, confidence, module, text, header[1] if inherited and header else None
        )
        self._open = finding
        self._open_gap = 0
        self._body = False

    def _record(
        self,
        cause: CauseId,
        confidence: float,
        module: ModuleVersion | None,
        text: str,
        header: str | None = None,
    ) -> DiagnosedFailure | None:
        current = self._open
        if (
            current is not None
            and current.cause == cause
            and (module is None or current.module in (None, module))
        ):
            if current.module is None and module is not None:
                current = self._rekey(current, cause, module)
            finding = current
        else:
            found = self._findings.get((cause, module))
            if found is None:
                if len(self._findings) >= MAX_FINDINGS:
                    return None
                found = DiagnosedFailure(cause, module, confidence, self._number)
                self._findings[(cause, module)] = found
            finding = found
        finding.confidence = max(finding.confidence, confidence)
        if header is not None:
            finding.add_evidence(header)
        finding.add_evidence(text)
        return finding

    def _rekey(
        self, finding: DiagnosedFailure, cause: CauseId, module: ModuleVersion | None
    ) -> DiagnosedFailure:
        """Give ``finding`` a new cause or module, merging it into an equal one if it exists."""
        self._findings.pop((finding.cause, finding.module), None)
        target = self._findings.get((cause, module))
        if target is not None and target is not finding:
            for line in finding.evidence:
                target.add_evidence(line)
            target.confidence = max(target.confidence, finding.confidence)
            target.line = min(target.line, finding.line)
            if self._open is finding:
                self._open = target
            return target
        finding.cause = cause
        finding.module = module
        self._findings[(cause, module)] = finding
        return finding

    def _watch(self, text: str, mark: int) -> None:
        """Headers, download activity, CI timeouts, and error-looking lines for ``unknown``."""
        if "@v" in text and _HEADER.search(text):
            self._header = (self._number, text, extract_module(text))
        if "go" in text and _ACTIVITY.match(text):  # every branch starts with ^
            self._activity = (self._number, text)
            return
        timeout_word, failure_anywhere = _timeout_or_failure(text)
        if timeout_word and _TIMEOUT.search(text):
            activity = self._activity
            if activity is not None and self._number - activity[0] <= HUNG_REACH:
                module = extract_module(activity[1])
                finding = self._record(CauseId.PROXY_HUNG, HUNG_CONFIDENCE, module, activity[1])
                if finding is not None:
                    finding.add_evidence(text)
                    self._open = None
                self._activity = (self._number, activity[1])
        if mark == MARK_WARNING or text.startswith(_RUNNER_NOISE_STARTS) or _RUNNER_NOISE in text:
            return
        failure = mark == MARK_ERROR or _FAILURE_START.match(text) is not None or failure_anywhere
        if text.startswith("go: ") and not _GO_INFO.match(text):
            failure = True
        if failure or _ERRORISH.search(text):
            self._errors.append((self._number, text))
            if _MODULE_ERRORISH.search(text) and not COMPILER_ERROR.search(text):
                self._module_error = True
        if failure and not self._failed:
            self._failed = True
            self._failure_line = self._number


def _timeout_or_failure(text: str) -> tuple[bool, bool]:
    """Whether ``text`` holds one of TIMEOUT_WORDS, and whether it holds a failure pattern."""
    found = _TIMEOUT_OR_FAILURE.search(text)
    if found is None:
        return False, False
    start = found.start()  # neither occurs before this
    timeout_word = _TIMEOUT_WORD.search(text, start) is not None
    return timeout_word, _FAILURE_ANYWHERE.search(text, start) is not None


def _body_meaning(text: str) -> CauseId | None:
    """What a proxy's not-found answer says about the module, if it names a module problem."""
    if _NO_SUCH_REVISION.search(text):
        return CauseId.UNKNOWN_REVISION
    classified = classify_text(text.removeprefix(_SERVER_RESPONSE).strip())
    if (
        classified is not None
        and classified[0] is CauseId.INVALID_VERSION_OR_GOMOD
        and classified[1] >= BODY_MEANING_CONFIDENCE
    ):
        return CauseId.INVALID_VERSION_OR_GOMOD
    return None


def _not_found(finding: DiagnosedFailure) -> bool:
    """True when the proxy's status line said 404 or 410 (a 5xx body proves nothing)."""
    return any(": 404 " in line or ": 410 " in line for line in finding.evidence[:2])


def diagnose_lines(lines: Iterable[str]) -> list[DiagnosedFailure]:
    """The ranked findings of a whole log given as lines."""
    return Diagnoser().feed_all(lines).findings()
