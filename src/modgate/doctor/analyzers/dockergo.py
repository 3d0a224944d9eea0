"""Rules on the go commands a Dockerfile stage runs, with the stage's state at that point.

Module cache ownership (root fills it, a later USER cannot add to it), cache
mounts that only the download step has, direct fetches in images without
git, cgo without a compiler, and Go settings that were declared where this
stage cannot see them (a global ARG not redeclared, the ENV of a stage this
one is not built FROM, ``$NAME`` of an ARG declared elsewhere).
"""

from __future__ import annotations

from modgate.doctor.analyzers import goenv
from modgate.doctor.analyzers.dockerstage import Stage, Walk, label, modcache, once
from modgate.doctor.analyzers.goenv import Scope
from modgate.doctor.catalog import (
    GM024_USER_AFTER_ROOT_CACHE,
    GM025_CACHE_MOUNT_NOT_ON_BUILD,
    GM027_DIRECT_FETCH_WITHOUT_GIT,
    GM028_CGO_WITHOUT_COMPILER,
    GM029_VARIABLE_NOT_IN_STAGE,
)
from modgate.doctor.parsers import goimage
from modgate.doctor.parsers.dockerparse import Instruction, referenced_names
from modgate.doctor.parsers.shellparse import GoCall

_COMPILERS = frozenset({"gcc", "build-base", "clang", "g++", "build-essential"})
_DIRECT_OFF = ("", "none")
_FETCH_VARIABLES = frozenset(
    {"GOPROXY", "GOPRIVATE", "GONOPROXY", "GONOSUMDB", "GOSUMDB", "GOINSECURE", "GOFLAGS"}
)
_PREDEFINED_PROXY_ARGS = frozenset(goenv.PROXY_VARIABLES) | {"FTP_PROXY", "ALL_PROXY"}
_PLATFORM_ARGS = frozenset(
    f"{kind}{part}"
    for kind in ("TARGET", "BUILD")
    for part in ("PLATFORM", "OS", "ARCH", "VARIANT")
)
_BUILD_COMMANDS = frozenset({"build", "install", "test", "run", "vet"})


def _positional(call: GoCall) -> list[str]:
    return [a.text for a in call.args if not a.text.startswith("-")]


def installs_at_version(call: GoCall) -> bool:
    """``go install pkg@version`` / ``go run pkg@version``: outside the main module."""
    return call.subcommand in ("install", "run") and any("@" in a for a in _positional(call))


def _downloads_all(call: GoCall) -> bool:
    return call.subcommand == "mod download" and not _positional(call)


def _downloads_new(call: GoCall) -> bool:
    """Whether the call may need modules that a full ``go mod download`` did not fetch."""
    if call.subcommand in ("get", "mod tidy", "work sync"):
        return True
    if call.subcommand == "mod download":
        return bool(_positional(call))
    return call.subcommand in ("install", "run") and any("@" in a for a in _positional(call))


def _fetches_direct(scope: Scope) -> bool:
    goproxy = scope.known("GOPROXY")
    if goproxy is not None and goproxy.split(",")[0].split("|")[0].strip() == "direct":
        return True
    for name in ("GOPRIVATE", "GONOPROXY"):
        value = scope.known(name)
        if value is not None and value.strip() not in _DIRECT_OFF:
            return True
    return False


def fetch_rules(
    call: GoCall, scope: Scope, ins: Instruction, stage: Stage, walk: Walk, *, cached: bool
) -> None:
    ctx, file = walk.ctx, walk.file
    if cached:
        if call.subcommand == "mod download":
            stage.download_mounts.append((modcache(stage), ins.line))
    elif stage.download_mounts and not stage.reported_mount:
        target, line = stage.download_mounts[0]
        stage.reported_mount = True
        ctx.report.emit(
            GM025_CACHE_MOUNT_NOT_ON_BUILD,
            file,
            call.line,
            f"go {call.subcommand} runs without the cache mount at {target} that line {line} "
            "downloaded into: those modules are not in the image, so they are fetched again",
        )
    if not cached:
        if stage.root:
            stage.root_fill_line = stage.root_fill_line or ins.line
            stage.root_filled_all = stage.root_filled_all or _downloads_all(call)
        elif (
            stage.root_fill_line
            and stage.user_line > stage.root_fill_line
            and (_downloads_new(call) or not stage.root_filled_all)
        ):
            ctx.report.emit(
                GM024_USER_AFTER_ROOT_CACHE,
                file,
                call.line,
                f"go {call.subcommand} runs as USER (line {stage.user_line}) but root filled "
                f"the module cache at line {stage.root_fill_line}: downloads fail with "
                "'permission denied'",
            )
            stage.root_fill_line = 0
    image = stage.image
    if (
        image is not None
        and goimage.has_git(image) is False
        and "git" not in stage.packages
        and _fetches_direct(scope)
        and once(stage, GM027_DIRECT_FETCH_WITHOUT_GIT)
    ):
        ctx.report.emit(
            GM027_DIRECT_FETCH_WITHOUT_GIT,
            file,
            call.line,
            f"go {call.subcommand} fetches some modules directly (GOPROXY direct or "
            f"GOPRIVATE/GONOPROXY) but {image.repository}:{image.tag or 'latest'} has no git",
        )
    cgo = scope.settings.get("CGO_ENABLED")
    if (
        cgo is not None
        and cgo.known
        and cgo.value == "1"
        and call.subcommand in _BUILD_COMMANDS
        and image is not None
        and goimage.has_c_compiler(image) is False
        and not stage.packages & _COMPILERS
    ):
        ctx.report.emit(
            GM028_CGO_WITHOUT_COMPILER,
            cgo.file,
            cgo.line,
            f"CGO_ENABLED=1 but {image.repository}:{image.tag or 'latest'} has no C compiler: "
            f"go {call.subcommand} of cgo packages fails ('C compiler \"gcc\" not found')",
        )
    _check_missing_settings(call, scope, stage, walk)


def _check_missing_settings(call: GoCall, scope: Scope, stage: Stage, walk: Walk) -> None:
    ctx, file = walk.ctx, walk.file
    for name, (_, line) in walk.global_args.items():
        if (
            name in goenv.WATCHED
            and name not in _PREDEFINED_PROXY_ARGS
            and name not in stage.args
            and name not in scope.settings
            and name not in walk.reported_globals
        ):
            walk.reported_globals.add(name)
            ctx.report.emit(
                GM029_VARIABLE_NOT_IN_STAGE,
                file,
                line,
                f"ARG {name} before the first FROM does not reach go {call.subcommand} "
                f"(line {call.line}) in stage {label(stage)}: redeclare 'ARG {name}' in the stage",
            )
    missing = [
        (name, origin, setting)
        for name, (origin, setting) in walk.env_origins.items()
        if name in _FETCH_VARIABLES and origin is not stage and name not in scope.settings
    ]
    if missing and once(stage, GM029_VARIABLE_NOT_IN_STAGE):
        names = ", ".join(name for name, _, _ in missing)
        _, origin, setting = missing[0]
        ctx.report.emit(
            GM029_VARIABLE_NOT_IN_STAGE,
            file,
            call.line,
            f"{names} set in stage {label(origin)} (line {setting.line}) do not reach stage "
            f"{label(stage)}, which does not start FROM it: go {call.subcommand} runs "
            "without them",
        )


def check_references(ins: Instruction, stage: Stage, walk: Walk) -> None:
    declared_elsewhere = set(walk.global_args) | _PLATFORM_ARGS
    for other in walk.stages:
        if other is not stage:
            declared_elsewhere |= other.args
    text = ins.rest + "".join(h.body for h in ins.heredocs)
    for name in sorted(referenced_names(text)):
        if name in declared_elsewhere and name not in stage.args and name not in stage.values:
            if name in _PREDEFINED_PROXY_ARGS:
                continue
            walk.ctx.report.emit(
                GM029_VARIABLE_NOT_IN_STAGE,
                walk.file,
                ins.line,
                f"${name} is declared with ARG outside stage {label(stage)}, so it is empty "
                f"here: add 'ARG {name}' to the stage",
            )
