"""Dockerfiles: the walk over stages and instructions, and the rules about single instructions.

Each stage is walked in order with what BuildKit gives it: ``FROM <stage>``
inherits that stage's ENV, user, installed packages and copied files;
``FROM <image>`` starts afresh; an ARG must be declared in the stage to
reach RUN (a global ARG only reaches FROM lines). Official golang images
set GOTOOLCHAIN=local and GOPATH=/go; Debian variants ship git and gcc,
Alpine ones neither. The rules about the go commands a stage runs are in
:mod:`modgate.doctor.analyzers.dockergo`.
"""

from __future__ import annotations

import re

from modgate.doctor.analyzers import dockergo, goenv
from modgate.doctor.analyzers.context import GolangImage, RepoContext
from modgate.doctor.analyzers.dockerstage import MODCACHE_TARGETS, Stage, Walk, modcache
from modgate.doctor.analyzers.goenv import Setting
from modgate.doctor.analyzers.shell import check_script
from modgate.doctor.catalog import (
    GM021_DOWNLOAD_WITHOUT_GOSUM,
    GM022_FLOATING_GOLANG_TAG,
    GM026_RUN_PLATFORM_FLAG,
    GM031_GO_GET_OUTSIDE_MODULE,
    GM046_MOD_INIT_IN_IMAGE,
)
from modgate.doctor.parsers import goimage
from modgate.doctor.parsers.dockerparse import (
    Instruction,
    key_values,
    parse_dockerfile,
    referenced_names,
    split_words,
)

_ROOT_USERS = frozenset({"root", "0"})
_GO_REPLACED_RE = re.compile(
    r"\b(?:gimme|gvm|goenv|asdf|mise|g install)\b|golang\.org/dl/go\d|go\d+\.\d+[.\d]*\.linux-"
    r"|go\.dev/dl/|dl\.google\.com/go/"
)
"""A RUN that installs another Go: version managers, golang.org/dl, a release tarball."""
_FETCHES_SOURCES_RE = re.compile(r"\b(?:git\s+clone|git\s+fetch|curl|wget|tar|unzip)\b")
"""A RUN that brings files into the stage that doctor cannot follow."""
_BUILD_TOOLS = frozenset({"make", "gmake", "mage", "task", "goreleaser", "bazel", "ko"})
_SHELLS = frozenset({"", "sh", "bash", "ash", "dash", "/bin/sh", "/bin/bash"})


def check_dockerfile(file: str, text: str, ctx: RepoContext) -> None:
    dockerfile = parse_dockerfile(text)
    walk = Walk(file, ctx)
    stage: Stage | None = None
    for ins in dockerfile.instructions:
        if ins.keyword == "FROM":
            if stage is not None:
                _finish(stage, walk)
            stage = _from(ins, walk)
            walk.stages.append(stage)
        elif stage is None:
            if ins.keyword == "ARG":
                _global_arg(ins, walk)
        elif ins.keyword in ("ENV", "ARG"):
            if ins.keyword == "ENV":
                dockergo.check_references(ins, stage, walk)
            _declare(ins, stage, walk)
        elif ins.keyword == "USER":
            words = split_words(ins.rest, stage.values)
            user = words[0][0].split(":", 1)[0] if words else "root"
            stage.root = user in _ROOT_USERS
            stage.user_line = ins.line
        elif ins.keyword in ("COPY", "ADD"):
            _copy(ins, stage, walk)
        elif ins.keyword == "RUN":
            _run(ins, stage, walk)
    if stage is not None:
        _finish(stage, walk)


def _global_arg(ins: Instruction, walk: Walk) -> None:
    """``ARG`` before the first FROM, expanded with the global ARGs above it (BuildKit).

    A default is what the build uses unless ``--build-arg`` overrides it; an ARG
    without a default (or one built from an unknown value) is unknown (None).
    """
    variables = {name: value for name, (value, _) in walk.global_args.items()}
    for name, value, known in key_values(ins.rest, variables, legacy=False):
        walk.global_args[name] = (value if known else None, ins.line)
        sources = {name}
        for used in referenced_names(ins.rest):
            sources |= walk.arg_sources.get(used, frozenset())
        walk.arg_sources[name] = frozenset(sources)


def _from(ins: Instruction, walk: Walk) -> Stage:
    variables = {name: value for name, (value, _) in walk.global_args.items()}
    words = split_words(ins.rest, variables)
    reference, known = words[0] if words else ("", False)
    name = words[2][0].lower() if len(words) >= 3 and words[1][0].lower() == "as" else None
    index = len(walk.stages)
    parent = next((s for s in walk.stages if s.name == reference.lower()), None)
    if parent is not None:
        return parent.child(index, name, ins.line)
    if not known or not reference:
        return Stage(index, name, ins.line, None)
    image = goimage.parse_image(reference)
    stage = Stage(index, name, ins.line, image, ins.line)
    stage.image_args = frozenset(
        source
        for used in referenced_names(ins.rest)
        for source in walk.arg_sources.get(used, frozenset())
    )
    # the build may choose the tag with --build-arg: then it is not known here
    stage.tag_known = not any(walk.ctx.passes_build_arg(arg) for arg in stage.image_args)
    if goimage.is_golang(image):
        stage.values.update({"GOPATH": "/go", "GOLANG_VERSION": None})
    return stage


def _declare(ins: Instruction, stage: Stage, walk: Walk) -> None:
    is_arg = ins.keyword == "ARG"
    for name, declared, known in key_values(ins.rest, stage.values, legacy=not is_arg):
        value = declared
        if is_arg:
            stage.args.add(name)
            if value is None and name in walk.global_args:
                value = walk.global_args[name][0]
            if name in stage.env:
                continue  # ENV wins over ARG of the same name
        stage.values[name] = value
        if name not in goenv.WATCHED:
            continue
        setting = Setting(
            name, value or "", walk.file, _name_line(ins, name), known=known and value is not None
        )
        # judged when go runs or the stage ends: a later ENV/ARG before that undoes it
        stage.pending[name] = setting
        stage.env[name] = setting
        if not is_arg:
            walk.env_origins.setdefault(name, (stage, setting))


def _name_line(ins: Instruction, name: str) -> int:
    """The line of ``NAME=`` inside a multi-line ENV/ARG (findings cite that line)."""
    m = re.search(rf"(?<![A-Za-z0-9_${{]){re.escape(name)}(?:=|\s)", ins.rest)
    return ins.rest_line + ins.rest.count("\n", 0, m.start()) if m else ins.line


def _judge(stage: Stage, walk: Walk) -> None:
    for setting in stage.pending.values():
        goenv.check_setting(setting, walk.ctx.modules, walk.ctx.report)
    stage.pending.clear()


def _copy(ins: Instruction, stage: Stage, walk: Walk) -> None:
    if ins.flag("from") is not None:
        stage.sources_unknown = True
        return
    words = ins.exec_form() or [w for w, _ in split_words(ins.rest, stage.values)]
    walk.ctx.context_copies.append((walk.file, tuple(words[:-1])))
    for source in words[:-1]:
        if "://" in source or source.startswith("git@"):
            stage.sources_unknown = True
        base = source.rstrip("/").rsplit("/", 1)[-1]
        if source in (".", "./") or base in ("*", "go.*"):
            stage.gomod_line = stage.gomod_line or ins.line
            stage.gosum_line = stage.gosum_line or ins.line
        elif base in ("go.mod", "*.mod"):
            stage.gomod_line = stage.gomod_line or ins.line
        elif base in ("go.sum", "*.sum"):
            stage.gosum_line = stage.gosum_line or ins.line


def _mounts(ins: Instruction) -> list[dict[str, str]]:
    mounts = []
    for spec in ins.flags.get("mount", []):
        fields = dict(part.partition("=")[::2] for part in spec.split(","))
        mounts.append({k.strip().lower(): v.strip() for k, v in fields.items()})
    return mounts


def _script(ins: Instruction) -> tuple[str, int] | None:
    exec_form = ins.exec_form()
    if exec_form is not None:
        if exec_form[:2] in (["sh", "-c"], ["/bin/sh", "-c"], ["bash", "-c"]):
            return " ".join(exec_form[2:]), ins.rest_line
        return " ".join(exec_form), ins.rest_line
    for heredoc in ins.heredocs:
        if heredoc.command.split(" ")[0] in _SHELLS:
            return heredoc.body, heredoc.first_line
    if ins.heredocs:
        return None
    return ins.rest, ins.rest_line


def _run(ins: Instruction, stage: Stage, walk: Walk) -> None:
    ctx, file = walk.ctx, walk.file
    if "platform" in ins.flags:
        ctx.report.emit(
            GM026_RUN_PLATFORM_FLAG,
            file,
            ins.line,
            f"RUN --platform={ins.flag('platform')}: RUN accepts --mount, --network and "
            "--security only; the platform belongs on FROM",
        )
    mounts = _mounts(ins)
    cache_dir = modcache(stage)
    cached = any(
        m.get("type") == "cache"
        and (m.get("target") or m.get("dst") or m.get("destination") or "").rstrip("/")
        in (cache_dir, *MODCACHE_TARGETS)
        for m in mounts
    )
    bound = {
        (m.get("source") or m.get("src") or ".").rstrip("/").rsplit("/", 1)[-1]
        for m in mounts
        if m.get("type", "bind") == "bind"
    }
    gomod = bool(stage.gomod_line) or bool(bound & {".", "", "go.mod"})
    gosum = bool(stage.gosum_line) or bool(bound & {".", "", "go.sum"})
    dockergo.check_references(ins, stage, walk)
    _judge(stage, walk)
    script = _script(ins)
    if script is None:
        return
    run = check_script(
        script[0],
        script[1],
        file,
        stage.scope(),
        ctx,
        as_root=stage.root,
        module_known=gomod and not stage.sources_unknown,
    )
    stage.packages |= run.packages
    toolchain = run.scope.settings.get("GOTOOLCHAIN")
    if _GO_REPLACED_RE.search(script[0]) or (
        toolchain is not None and not (toolchain.known and toolchain.value == "local")
    ):
        stage.go_replaced = True
    if gomod and (run.build_tools & _BUILD_TOOLS or run.runs_scripts):
        stage.builds_module = True
    initialised = False
    for call, scope in run.go_calls:
        initialised = initialised or call.subcommand == "mod init"
        if (
            (gomod or stage.sources_unknown)
            and not dockergo.installs_at_version(call)
            and call.subcommand != "env"
        ):
            stage.builds_module = True
        if call.subcommand == "get" and not gomod and not initialised and not stage.sources_unknown:
            ctx.report.emit(
                GM031_GO_GET_OUTSIDE_MODULE,
                file,
                call.line,
                "go get runs before go.mod is in this stage: 'go: go.mod file not found ... "
                "'go get' is no longer supported outside a module'",
            )
        if call.subcommand in ("mod tidy", "get") and initialised and not gomod:
            ctx.report.emit(
                GM046_MOD_INIT_IN_IMAGE,
                file,
                call.line,
                f"go mod init, then go {call.subcommand}: the image resolves whatever versions "
                "are newest at build time, and no committed go.sum checks them",
            )
        if call.subcommand == "mod download" and gomod and not gosum:
            ctx.report.emit(
                GM021_DOWNLOAD_WITHOUT_GOSUM,
                file,
                call.line,
                f"go mod download runs after go.mod is copied (line "
                f"{stage.gomod_line or ins.line}) but without go.sum: only go.mod hashes get "
                "recorded and the build later fails with 'missing go.sum entry'",
            )
        if call.fetches:
            dockergo.fetch_rules(call, scope, ins, stage, walk, cached=cached)
        goenv.check_scope(scope, ctx.report)
    if _FETCHES_SOURCES_RE.search(script[0]):
        stage.sources_unknown = True


def _finish(stage: Stage, walk: Walk) -> None:
    _judge(stage, walk)
    goenv.check_scope(stage.scope(), walk.ctx.report)
    image = stage.image
    if image is None or not goimage.is_golang(image):
        return
    if not stage.tag_known:
        return
    toolchain = stage.env.get("GOTOOLCHAIN")
    if toolchain is not None and not (toolchain.known and toolchain.value == "local"):
        stage.go_replaced = True  # ENV GOTOOLCHAIN=goX.Y: that Go runs, not the image's
    if goimage.is_floating(image) and not stage.go_replaced:
        reference = f"{image.repository}:{image.tag}" if image.tag else image.repository
        walk.ctx.report.emit(
            GM022_FLOATING_GOLANG_TAG,
            walk.file,
            stage.image_line,
            f"FROM {reference}: the tag does not pin a Go minor version, so the Go version "
            "changes under the build",
            fix=_pinned_image_fix(image, walk),
        )
    if not stage.builds_module or stage.go_replaced:
        return
    if goenv.toolchain_download_possible(stage.scope()):
        return
    version = goimage.tag_version(image.tag)
    if version is not None and goimage.sets_toolchain_local(version):
        walk.ctx.golang_images.append(
            GolangImage(walk.file, stage.image_line, f"{image.repository}:{image.tag}", version)
        )


def _pinned_image_fix(image: goimage.ImageRef, walk: Walk) -> str:
    """Name the image that matches the go line of the go.mod this Dockerfile builds."""
    go_line = walk.ctx.go_line_for(walk.file)
    variant = goimage.variant(image.tag)
    if go_line is None:
        return (
            "pin the Go minor version the module needs, e.g. "
            f"FROM {image.repository}:1.N{variant} (or a digest)"
        )
    version, gomod_file = go_line
    minor = ".".join(version.split(".")[:2])
    return (
        f"FROM {image.repository}:{minor}{variant} to match 'go {version}' in {gomod_file} "
        "(or pin a digest)"
    )
