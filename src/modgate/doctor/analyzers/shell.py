"""Checks of shell scripts: ``*.sh`` files and the scripts inside Dockerfiles and CI files.

:func:`check_script` walks the commands of one script with the settings in
force before it (a :class:`~modgate.doctor.analyzers.goenv.Scope`), records every
assignment that persists (``export``, ``go env -w``, ``>> $GITHUB_ENV``),
judges each Go setting, and reports go commands with ``-insecure`` or
``-mod=mod``, ``rm -rf`` of the module cache, git ``insteadOf`` rewrites
without credentials and sourced env files whose assignments are not
exported. It returns the go invocations with the scope each one runs in,
and the packages the script installs, for the Dockerfile rules.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from modgate.doctor.analyzers import buildimage, goenv
from modgate.doctor.analyzers.context import RepoContext
from modgate.doctor.analyzers.goenv import Scope, Setting
from modgate.doctor.catalog import (
    GM001_INSECURE_FLAG_REMOVED,
    GM015_MOD_MOD_IN_CI,
    GM032_RM_MODULE_CACHE,
    GM033_INSTEADOF_WITHOUT_CREDENTIALS,
    GM034_SOURCED_ENV_WITHOUT_EXPORT,
    GM044_INSTALL_LATEST_LOCAL_TOOLCHAIN,
    GM045_MOD_VENDOR_WITHOUT_VENDOR,
    Rule,
)
from modgate.doctor.parsers import goimage
from modgate.doctor.parsers.shellparse import (
    Command,
    GoCall,
    Word,
    argv,
    exported_assignments,
    github_env_writes,
    go_call,
    is_exported_by,
    parse_script,
    sets_allexport,
    sourced_file,
    split_assignment,
    wrapper_assignments,
)

_MODCACHE_RE = re.compile(
    r"^(?:/go|\$\{?GOPATH\}?|~/go|\$\{?HOME\}?/go|/root/go)/pkg/mod(?:/(?!cache\b).*)?/?$"
    r"|^\$\{?GOMODCACHE\}?(?:/(?!cache\b).*)?/?$"
    r"|^\$\(go env GOMODCACHE\)(?:/(?!cache\b).*)?/?$"
)
_INSTALLERS = {"apk": "add", "apt-get": "install", "apt": "install", "yum": "install",
               "dnf": "install", "microdnf": "install"}  # fmt: skip
_CREDENTIAL_HINTS = (".netrc", "credential.helper", "GIT_ASKPASS", "setup-git", "credential-")
_INSTEADOF_SUFFIX = ".insteadof"
_ELSEWHERE_RE = re.compile(r"\bgit\s+clone\b|\bgo\s+mod\s+vendor\b|\bcurl\b|\bwget\b")
"""Scripts that build sources fetched at run time (or vendor them first)."""
_CONTAINER_RUNNERS = frozenset({"docker", "podman", "nerdctl"})
_MODULE_BUILDS = frozenset({"build", "test", "run", "install", "vet", "list", "generate"})

Resolver = Callable[[str], tuple[str, str] | None]
"""Maps a sourced path to (a name for messages, the file's text), or None."""


@dataclass(slots=True)
class ScriptRun:
    scope: Scope
    go_calls: list[tuple[GoCall, Scope]] = field(default_factory=list)
    packages: set[str] = field(default_factory=set)
    github_env: list[Setting] = field(default_factory=list)
    """``NAME=value`` lines appended to $GITHUB_ENV (they apply to later steps)."""
    build_tools: set[str] = field(default_factory=set)
    """Names of the commands the script runs (``make``, ``mage``, ...)."""
    runs_scripts: bool = False
    """The script runs another script (``./build.sh``, ``bash hack/x.sh``)."""


def setting_of(word: Word, file: str) -> Setting | None:
    pair = split_assignment(word)
    if pair is None or pair[0] not in goenv.WATCHED:
        return None
    return Setting(pair[0], pair[1], file, word.line, known=not word.expands)


def check_script(
    text: str,
    first_line: int,
    file: str,
    scope: Scope,
    ctx: RepoContext,
    *,
    as_root: bool | None = None,
    resolver: Resolver | None = None,
    module_known: bool = True,
) -> ScriptRun:
    """Check one script. ``as_root`` is True/False when the user is known (Dockerfiles).

    ``resolver`` maps a sourced path to (name, text) before repository files are tried
    (Kubernetes uses it for ConfigMaps mounted as files).
    """
    commands = parse_script(text, first_line)
    run = ScriptRun(scope.copy())
    allexport = False
    credentials = any(hint in text for hint in _CREDENTIAL_HINTS)
    pending: dict[str, Setting] = {}
    # -mod=vendor is judged against the repository only when the script builds it
    vendor_known = module_known and not _ELSEWHERE_RE.search(text)
    reported: set[Rule] = set()
    for cmd in commands:
        toggled = sets_allexport(cmd)
        if toggled is not None:
            allexport = toggled
        for word in exported_assignments(cmd):
            setting = setting_of(word, file)
            if setting is not None:
                # judged when a go command runs or the script ends: a later assignment
                # before that undoes this one (GO111MODULE=off ... export GO111MODULE=on)
                pending[setting.name] = setting
                run.scope.settings[setting.name] = setting
        for word in github_env_writes(cmd):
            setting = setting_of(word, file)
            if setting is not None:
                goenv.check_setting(setting, ctx.modules, ctx.report)
                run.github_env.append(setting)
        local = run.scope
        prefix = [s for w in wrapper_assignments(cmd) if (s := setting_of(w, file)) is not None]
        if prefix:
            local = run.scope.copy()
            for setting in prefix:
                goenv.check_setting(setting, ctx.modules, ctx.report)
                local.settings[setting.name] = setting
        call = go_call(cmd)
        if call is not None:
            _judge(pending, ctx)
            _check_go_call(call, file, ctx)
            _check_go_call_in_scope(
                call, file, ctx, local, vendor_known=vendor_known, reported=reported
            )
            run.go_calls.append((call, local))
        words = argv(cmd)
        if not words:
            continue
        name = words[0].text.rsplit("/", 1)[-1]
        run.build_tools.add(name)
        if name.endswith((".sh", ".bash")) or (
            name in ("sh", "bash") and len(words) > 1 and words[1].text.endswith(".sh")
        ):
            run.runs_scripts = True
        if name == "rm" and as_root is not True:
            _check_rm(words, file, ctx)
        elif name == "git" and not credentials:
            _check_git_config(words, file, ctx)
        elif name in _INSTALLERS:
            run.packages.update(_installed(words, _INSTALLERS[name]))
        elif name in _CONTAINER_RUNNERS:
            _check_container_run(words, file, ctx)
        source = sourced_file(cmd)
        if source is not None and not allexport:
            _check_sourced(cmd, source, file, ctx, resolver)
    _judge(pending, ctx)
    return run


def _judge(pending: dict[str, Setting], ctx: RepoContext) -> None:
    for setting in pending.values():
        goenv.check_setting(setting, ctx.modules, ctx.report)
    pending.clear()


def _check_go_call(call: GoCall, file: str, ctx: RepoContext) -> None:
    for arg in call.args:
        if arg.text in ("-insecure", "--insecure"):
            ctx.report.emit(
                GM001_INSECURE_FLAG_REMOVED,
                file,
                arg.line,
                f"go {call.subcommand} -insecure: the flag was removed in Go 1.17 "
                "('flag provided but not defined: -insecure')",
            )
        elif arg.text in ("-mod=mod", "--mod=mod") and not any(
            "@" in a.text for a in call.args if not a.text.startswith("-")
        ):  # go list -m x@v1 and go install x@v1 read no go.mod of the repository
            ctx.report.emit(
                GM015_MOD_MOD_IN_CI,
                file,
                arg.line,
                f"go {call.subcommand} -mod=mod may rewrite go.mod and go.sum instead of failing "
                "on a missing requirement",
            )


def _check_go_call_in_scope(
    call: GoCall,
    file: str,
    ctx: RepoContext,
    scope: Scope,
    *,
    vendor_known: bool,
    reported: set[Rule],
) -> None:
    """Rules that depend on the settings in force and on the repository (vendor/).

    Each is reported once per script (a devcontainer installs twenty tools at once).
    """
    positional = [a for a in call.args if not a.text.startswith("-")]
    latest = next((a for a in positional if a.text.endswith("@latest")), None)
    if (
        call.subcommand in ("install", "run")
        and latest is not None
        and (
            scope.known("GOTOOLCHAIN") == "local"
            or ("GOTOOLCHAIN" not in scope.settings and scope.toolchain_local)
        )
        and GM044_INSTALL_LATEST_LOCAL_TOOLCHAIN not in reported
    ):
        reported.add(GM044_INSTALL_LATEST_LOCAL_TOOLCHAIN)
        ctx.report.emit(
            GM044_INSTALL_LATEST_LOCAL_TOOLCHAIN,
            file,
            latest.line,
            f"go {call.subcommand} {latest.text} with GOTOOLCHAIN=local: the newest release "
            "may need a newer Go than this one ('go: ... requires go >= 1.N (running go "
            "1.M; GOTOOLCHAIN=local)') and the build breaks the day it is tagged",
            fix=f"pin the tool: {latest.text.removesuffix('@latest')}@vX.Y.Z",
        )
    goflags = scope.known("GOFLAGS") or ""
    vendor_flag = next((a for a in call.args if a.text in ("-mod=vendor", "--mod=vendor")), None)
    if vendor_flag is None and "-mod=vendor" not in goflags.split():
        return
    gomod = ctx.gomod_for(file)
    if (
        not vendor_known
        or gomod is None
        or gomod not in ctx.unvendored
        or call.subcommand not in _MODULE_BUILDS
        or "go mod vendor" in (ctx.read(file) or "")
    ):
        return
    ctx.report.emit(
        GM045_MOD_VENDOR_WITHOUT_VENDOR,
        file,
        vendor_flag.line if vendor_flag is not None else call.line,
        f"go {call.subcommand} -mod=vendor, but {gomod} requires modules and there is no "
        "vendor/ directory beside it: 'go: inconsistent vendoring ... is explicitly "
        "required in go.mod, but not marked as explicit in vendor/modules.txt'",
    )


def _check_container_run(words: list[Word], file: str, ctx: RepoContext) -> None:
    """``docker run ... golang:1.23 go build ./...``: that image builds the repository."""
    texts = [w.text for w in words]
    if "run" not in texts[1:3]:
        return
    for index, word in enumerate(words[2:], start=2):
        image = goimage.parse_image(word.text)
        if word.text.startswith("-") or not goimage.is_golang(image):
            continue
        rest = texts[index + 1 :]
        if len(rest) >= 3 and rest[0].rsplit("/", 1)[-1] in ("sh", "bash") and rest[1] == "-c":
            commands = parse_script(rest[2], word.line)
        else:
            commands = parse_script(" ".join(rest), word.line)
        calls = [c for c in (go_call(cmd) for cmd in commands) if c is not None]
        names = {argv(cmd)[0].text for cmd in commands if argv(cmd)}
        if not buildimage.builds_repository(calls, names):
            return
        settings = [
            setting
            for flag, value in itertools.pairwise(words[2:index])
            if flag.text in ("-e", "--env") and (setting := setting_of(value, file)) is not None
        ]
        buildimage.record(ctx, file, word.line, word.text, goenv.scope_from(settings))
        return


def _check_rm(words: list[Word], file: str, ctx: RepoContext) -> None:
    options = "".join(w.text[1:] for w in words[1:] if w.text.startswith("-"))
    if "r" not in options.lower():
        return
    for word in words[1:]:
        target = word.text.strip('"')
        if not word.text.startswith("-") and _MODCACHE_RE.match(target):
            ctx.report.emit(
                GM032_RM_MODULE_CACHE,
                file,
                word.line,
                f"rm -r {target}: module directories are read-only, so this fails with "
                "'Permission denied' unless run as root",
            )
            return


def _check_git_config(words: list[Word], file: str, ctx: RepoContext) -> None:
    texts = [w.text for w in words]
    if len(texts) < 2 or texts[1] != "config":
        return
    rest = [w for w in words[2:] if not w.text.startswith("-")]
    if len(rest) < 2:
        return
    key = rest[0].text
    if not key.lower().startswith("url.") or not key.lower().endswith(_INSTEADOF_SUFFIX):
        return
    base = key[len("url.") : -len(_INSTEADOF_SUFFIX)]
    if not base.lower().startswith("https://"):
        return
    if "@" in base.split("/", 3)[2]:
        return
    ctx.report.emit(
        GM033_INSTEADOF_WITHOUT_CREDENTIALS,
        file,
        rest[0].line,
        f"git rewrites {rest[1].text} to {base} but no credentials are configured in this "
        "script: the go command's git fails with 'terminal prompts disabled'",
    )


def _installed(words: list[Word], verb: str) -> set[str]:
    texts = [w.text for w in words[1:]]
    if verb not in texts:
        return set()
    after = texts[texts.index(verb) + 1 :]
    return {t.split("=", 1)[0] for t in after if not t.startswith("-")}


def _passed_explicitly(name: str, *texts: str) -> bool:
    """``NAME=${NAME}`` before a command (``env CGO_ENABLED=${CGO_ENABLED} go build``)."""
    again = re.compile(rf"(?<![A-Za-z0-9_]){name}=[\"']?\$\{{?{name}\b")
    return any(again.search(text) for text in texts)


def _check_sourced(
    cmd: Command, source: Word, file: str, ctx: RepoContext, resolver: Resolver | None
) -> None:
    if source.expands:
        return
    found = resolver(source.text) if resolver is not None else None
    if found is None:
        target = ctx.resolve(file, source.text)
        text = ctx.read(target) if target is not None else None
        if target is None or text is None:
            return
        found = (target, text)
    target, text = found
    unexported: dict[str, Word] = {}
    exported: set[str] = set()
    for sourced in parse_script(text):
        if sets_allexport(sourced):
            return
        if is_exported_by(sourced):
            exported.update(w.text.split("=", 1)[0] for w in argv(sourced)[1:])
            continue
        if argv(sourced):
            continue
        for word in sourced.words:
            pair = split_assignment(word)
            if pair is not None and pair[0] in goenv.WATCHED:
                unexported.setdefault(pair[0], word)
    sourcing = ctx.read(file) or ""
    missing = [
        (name, word)
        for name, word in unexported.items()
        if name not in exported and not _passed_explicitly(name, text, sourcing)
    ]
    if missing:
        name, word = missing[0]
        ctx.report.emit(
            GM034_SOURCED_ENV_WITHOUT_EXPORT,
            file,
            cmd.line,
            f"sources {target}, whose {name}= (line {word.line}) is not exported: "
            "the go command does not see it",
        )
