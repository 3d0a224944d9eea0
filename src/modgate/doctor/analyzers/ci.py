"""GitHub Actions workflows: env at workflow, job and step level, run scripts, setup-go, caches.

A step runs with workflow env, then job env (and the job container's env),
then what earlier steps appended to ``$GITHUB_ENV``, then its own env; its
``run:`` script adds its exports. ``${{ ... }}`` values are unknown. A job
in a ``golang`` container has GOTOOLCHAIN=local. setup-go caches the module
and build caches by default from v4 on (``cache: false`` turns it off).
"""

from __future__ import annotations

import re

from yaml.nodes import Node

from modgate.doctor.analyzers import buildimage, goenv
from modgate.doctor.analyzers.context import RepoContext
from modgate.doctor.analyzers.goenv import Setting
from modgate.doctor.analyzers.shell import check_script
from modgate.doctor.catalog import (
    GM035_SETUP_GO_UNPINNED,
    GM036_DUPLICATE_MODULE_CACHE,
    GM037_JOB_WITHOUT_TIMEOUT,
)
from modgate.doctor.parsers import goimage, yamlnodes
from modgate.doctor.parsers.shellparse import GoCall

_EXPRESSION = "${{"
_SETUP_GO = "actions/setup-go"
_CACHE_ACTIONS = ("actions/cache", "actions/cache/restore")
_CACHE_DEFAULT_SINCE = 4
_GO_CACHE_PATHS = ("go/pkg/mod", "go-build", "GOMODCACHE", "GOCACHE")
_MAJOR_RE = re.compile(r"v?(\d+)")
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})
_PROGRAM_SHELLS = frozenset({"python", "python3", "node", "perl", "ruby"})


def env_settings(
    node: Node | None, file: str, *, unknown_marker: str = _EXPRESSION
) -> list[Setting]:
    """Settings of watched variables in an ``env:``/``variables:`` mapping."""
    found = []
    for key, key_node, value in yamlnodes.items(node):
        if key not in goenv.WATCHED:
            continue
        text = yamlnodes.scalar(value)
        if text is None:  # GitLab's {value: ..., description: ...}
            text = yamlnodes.get_scalar(value, "value")
        if text is None:
            continue
        found.append(
            Setting(key, text, file, yamlnodes.line(key_node), known=unknown_marker not in text)
        )
    return found


def _layer(settings: list[Setting], ctx: RepoContext) -> dict[str, Setting]:
    for s in settings:
        goenv.check_setting(s, ctx.modules, ctx.report)
    return {s.name: s for s in settings}


def _action(uses: str) -> tuple[str, int | None]:
    """(``owner/name``, major version or None) of a ``uses:`` reference."""
    name, _, ref = uses.partition("@")
    m = _MAJOR_RE.match(ref)
    return name.lower(), int(m.group(1)) if m else None


def check_workflow(file: str, text: str, ctx: RepoContext) -> None:
    for doc in yamlnodes.documents(text):
        workflow_env = _layer(env_settings(yamlnodes.get(doc, "env"), file), ctx)
        for job_name, job_key, job in yamlnodes.items(yamlnodes.get(doc, "jobs")):
            _check_job(
                file,
                workflow=doc,
                job_name=job_name,
                job_key=job_key,
                job=job,
                workflow_env=workflow_env,
                ctx=ctx,
            )


def _check_job(
    file: str,
    *,
    workflow: Node,
    job_name: str,
    job_key: Node,
    job: Node,
    workflow_env: dict[str, Setting],
    ctx: RepoContext,
) -> None:
    container = yamlnodes.get(job, "container")
    image_text = yamlnodes.scalar(container) or yamlnodes.get_scalar(container, "image")
    golang = image_text is not None and goimage.is_golang(goimage.parse_image(image_text))
    job_env = _layer(env_settings(yamlnodes.get(job, "env"), file), ctx)
    container_env = _layer(env_settings(yamlnodes.get(container, "env"), file), ctx)
    carried: dict[str, Setting] = {}
    setup_go_cache: tuple[int, str] | None = None
    caches: list[int] = []
    fetch_line = 0
    go_calls: list[GoCall] = []
    tools: set[str] = set()
    step_timeouts = True
    default_shell = yamlnodes.get_scalar(
        yamlnodes.get(yamlnodes.get(job, "defaults"), "run"), "shell"
    ) or yamlnodes.get_scalar(yamlnodes.get(yamlnodes.get(workflow, "defaults"), "run"), "shell")
    for step in yamlnodes.sequence(yamlnodes.get(job, "steps")):
        step_env = _layer(env_settings(yamlnodes.get(step, "env"), file), ctx)
        scope = goenv.merged(
            workflow_env, job_env, container_env, carried, step_env, toolchain_local=golang
        )
        goenv.check_scope(scope, ctx.report)
        uses = yamlnodes.get_scalar(step, "uses")
        if uses is not None:
            name, major = _action(uses)
            line = yamlnodes.key_line(step, "uses")
            if name == _SETUP_GO:
                setup_go_cache = _check_setup_go(file, step, line, major, ctx) or setup_go_cache
            elif name in _CACHE_ACTIONS and _caches_go(step):
                caches.append(line)
        run_node = yamlnodes.get(step, "run")
        script = yamlnodes.scalar(run_node)
        shell = yamlnodes.get_scalar(step, "shell") or default_shell
        if script is None or run_node is None or not _is_command_shell(shell):
            continue
        run = check_script(script, yamlnodes.text_line(run_node), file, scope, ctx)
        for setting in run.github_env:
            carried[setting.name] = setting
        go_calls.extend(call for call, _ in run.go_calls)
        tools |= run.build_tools
        fetching = [call for call, _ in run.go_calls if call.fetches]
        if fetching:
            fetch_line = fetch_line or fetching[0].line
            step_timeouts = step_timeouts and yamlnodes.get(step, "timeout-minutes") is not None
        for _, call_scope in run.go_calls:
            goenv.check_scope(call_scope, ctx.report)
    if golang and container is not None and buildimage.builds_repository(go_calls, tools):
        image_line = yamlnodes.line(container) if yamlnodes.scalar(container) else 0
        buildimage.record(
            ctx,
            file,
            image_line or yamlnodes.key_line(container, "image"),
            image_text,
            goenv.merged(workflow_env, job_env, container_env, toolchain_local=True),
        )
    if setup_go_cache is not None:
        for line in caches:
            ctx.report.emit(
                GM036_DUPLICATE_MODULE_CACHE,
                file,
                line,
                f"this cache step stores the Go module/build cache that {setup_go_cache[1]} "
                f"(line {setup_go_cache[0]}) already caches: the second restore fails with "
                "'Cannot open: File exists'",
            )
    if fetch_line and not step_timeouts and yamlnodes.get(job, "timeout-minutes") is None:
        ctx.report.emit(
            GM037_JOB_WITHOUT_TIMEOUT,
            file,
            yamlnodes.line(job_key),
            f"job '{job_name}' downloads modules (line {fetch_line}) without timeout-minutes: "
            "the go command has no timeout of its own",
        )


def _is_command_shell(shell: str | None) -> bool:
    """Whether ``run:`` holds command lines (bash, sh, pwsh, cmd), not a program (python)."""
    if shell is None or not shell.split():
        return True
    return shell.split()[0].rsplit("/", 1)[-1] not in _PROGRAM_SHELLS


def _check_setup_go(
    file: str, step: Node, line: int, major: int | None, ctx: RepoContext
) -> tuple[int, str] | None:
    with_node = yamlnodes.get(step, "with")
    version = yamlnodes.get_scalar(with_node, "go-version")
    version_file = yamlnodes.get_scalar(with_node, "go-version-file")
    if not version and not version_file:
        ctx.report.emit(
            GM035_SETUP_GO_UNPINNED,
            file,
            line,
            "actions/setup-go has neither go-version nor go-version-file: the Go version is "
            "whatever the runner image has today",
        )
    cache = yamlnodes.get_scalar(with_node, "cache")
    label = f"actions/setup-go@v{major}" if major is not None else "actions/setup-go"
    if cache is not None:
        return None if cache.strip().lower() in _FALSE_WORDS else (line, label)
    if major is None or major >= _CACHE_DEFAULT_SINCE:
        return (line, label)
    return None


def _caches_go(step: Node) -> bool:
    path = yamlnodes.get_scalar(yamlnodes.get(step, "with"), "path") or ""
    return any(marker in path for marker in _GO_CACHE_PATHS)
