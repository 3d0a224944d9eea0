"""GOFLAGS read the way the go command reads it (cmd/go/internal/base/goflags.go).

The value is split on spaces; a word may be wrapped whole in ``'...'`` or
``"..."`` (no escapes inside). Each word must look like ``-name``,
``--name``, ``-name=value`` or ``--name=value``, and ``name`` must be a flag
of *some* go command, otherwise every go command except ``go env`` stops
with ``go: parsing $GOFLAGS: ...``. A known flag that the running command
does not define is ignored, which is why ``GOFLAGS=-insecure`` fails only
``go get``.

:data:`KNOWN_FLAGS` was checked against go1.27.3 (each name in GOFLAGS, run
through ``go list -m``); a test keeps it honest.
"""

from __future__ import annotations

from dataclasses import dataclass

_SPACE_BYTES = " \t\n\r"
KNOWN_FLAGS = frozenset(
    [
        "C",
        "a",
        "artifacts",
        "asan",
        "asmflags",
        "bench",
        "benchmem",
        "benchtime",
        "blockprofile",
        "blockprofilerate",
        "buildmode",
        "buildvcs",
        "c",
        "cache",
        "changed",
        "compat",
        "compiled",
        "compiler",
        "count",
        "cover",
        "covermode",
        "coverpkg",
        "coverprofile",
        "cpu",
        "cpuprofile",
        "d",
        "debug-actiongraph",
        "debug-runtime-trace",
        "debug-trace",
        "deps",
        "diff",
        "dropexclude",
        "dropgodebug",
        "dropignore",
        "dropreplace",
        "droprequire",
        "dropretract",
        "droptool",
        "dropuse",
        "e",
        "exclude",
        "exec",
        "export",
        "f",
        "failfast",
        "find",
        "fix",
        "fmt",
        "fullpath",
        "fuzz",
        "fuzzcache",
        "fuzzminimizetime",
        "fuzztime",
        "gccgoflags",
        "gcflags",
        "go",
        "godebug",
        "i",
        "ignore",
        "insecure",
        "installsuffix",
        "json",
        "ldflags",
        "linkshared",
        "list",
        "m",
        "memprofile",
        "memprofilerate",
        "mod",
        "modcache",
        "modcacherw",
        "modfile",
        "module",
        "msan",
        "mutexprofile",
        "mutexprofilefraction",
        "n",
        "o",
        "outputdir",
        "overlay",
        "p",
        "parallel",
        "pgo",
        "pkgdir",
        "print",
        "r",
        "race",
        "replace",
        "require",
        "retract",
        "retracted",
        "reuse",
        "run",
        "short",
        "shuffle",
        "skip",
        "t",
        "tags",
        "test",
        "testcache",
        "timeout",
        "tool",
        "toolchain",
        "toolexec",
        "trace",
        "trimpath",
        "u",
        "use",
        "v",
        "vendor",
        "versions",
        "vet",
        "vettool",
        "w",
        "work",
        "x",
    ]
)
MOD_VALUES = ("", "mod", "readonly", "vendor")
"""What ``-mod=`` accepts."""


class GoFlagsError(ValueError):
    """GOFLAGS that every go command refuses; the message is the go command's."""


@dataclass(frozen=True, slots=True)
class GoFlag:
    word: str
    name: str
    value: str | None


def split_goflags(value: str) -> list[str]:
    """Go's ``quoted.Split``: GoFlagsError for an unterminated quote."""
    words: list[str] = []
    s = value
    while s:
        s = s.lstrip(_SPACE_BYTES)
        if not s:
            break
        if s[0] in "'\"":
            quote = s[0]
            end = s.find(quote, 1)
            if end < 0:
                raise GoFlagsError(f"parsing $GOFLAGS: unterminated {quote} string")
            words.append(s[1:end])
            s = s[end + 1 :]
            continue
        end = next((i for i, c in enumerate(s) if c in _SPACE_BYTES), len(s))
        words.append(s[:end])
        s = s[end:]
    return words


def parse_goflags(value: str) -> list[GoFlag]:
    """The flags of a GOFLAGS value; GoFlagsError with the go command's complaint."""
    flags: list[GoFlag] = []
    for word in split_goflags(value):
        if not word.startswith("-") or word in ("-", "--") or word.startswith(("---", "-=", "--=")):
            raise GoFlagsError(f'parsing $GOFLAGS: non-flag "{word}"')
        name = word[2:] if word.startswith("--") else word[1:]
        name, eq, flag_value = name.partition("=")
        if name not in KNOWN_FLAGS:
            raise GoFlagsError(f"parsing $GOFLAGS: unknown flag -{name}")
        flags.append(GoFlag(word, name, flag_value if eq else None))
    return flags


def mod_value_problem(flag: GoFlag) -> str | None:
    """Why a ``-mod`` flag fails build commands, or None."""
    if flag.name != "mod":
        return None
    if flag.value is None:
        return "flag needs an argument: -mod (write -mod=readonly, not -mod readonly)"
    if flag.value not in MOD_VALUES:
        return f"-mod={flag.value} not supported (can be '', 'mod', 'readonly', or 'vendor')"
    return None
