"""GitLab CI files: global and job ``variables``, ``image``, and script lists.

A job's scripts run in one shell with the global variables, then the job's
(a job variable overrides a global one); ``before_script``, ``script`` and
``after_script`` items run in order, each item a script of its own lines.
``default:`` gives the image and before_script of jobs without their own.
Values holding ``$`` are expanded by the runner and are unknown here.
"""

from __future__ import annotations

from yaml.nodes import Node

from modgate.doctor.analyzers import buildimage, goenv
from modgate.doctor.analyzers.ci import env_settings
from modgate.doctor.analyzers.context import RepoContext
from modgate.doctor.analyzers.goenv import Setting
from modgate.doctor.analyzers.shell import check_script
from modgate.doctor.parsers import goimage, yamlnodes
from modgate.doctor.parsers.shellparse import GoCall

_NOT_JOBS = frozenset(
    {
        "stages",
        "variables",
        "default",
        "include",
        "workflow",
        "image",
        "services",
        "before_script",
        "after_script",
        "cache",
        "spec",
    }
)
_SCRIPT_KEYS = ("before_script", "script", "after_script")


def check_gitlab(file: str, text: str, ctx: RepoContext) -> None:
    for doc in yamlnodes.documents(text):
        global_env = _layer(yamlnodes.get(doc, "variables"), file, ctx)
        default = yamlnodes.get(doc, "default")
        default_image = _image(default) or _image(doc)
        for name, _, job in yamlnodes.items(doc):
            if name in _NOT_JOBS or not yamlnodes.is_mapping(job):
                continue
            _check_job(
                file,
                job,
                default=default,
                global_env=global_env,
                default_image=default_image,
                ctx=ctx,
            )


def _layer(node: Node | None, file: str, ctx: RepoContext) -> dict[str, Setting]:
    settings = env_settings(node, file, unknown_marker="$")
    for s in settings:
        goenv.check_setting(s, ctx.modules, ctx.report)
    return {s.name: s for s in settings}


def _image(node: Node | None) -> str | None:
    image = yamlnodes.get(node, "image")
    return yamlnodes.scalar(image) or yamlnodes.get_scalar(image, "name")


def _check_job(
    file: str,
    job: Node,
    *,
    default: Node | None,
    global_env: dict[str, Setting],
    default_image: str | None,
    ctx: RepoContext,
) -> None:
    job_env = _layer(yamlnodes.get(job, "variables"), file, ctx)
    image = _image(job) or default_image
    golang = image is not None and goimage.is_golang(goimage.parse_image(image))
    scope = goenv.merged(global_env, job_env, toolchain_local=golang)
    goenv.check_scope(scope, ctx.report)
    job_scope = scope
    go_calls: list[GoCall] = []
    tools: set[str] = set()
    for key in _SCRIPT_KEYS:
        node = yamlnodes.get(job, key)
        if node is None and key == "before_script":
            node = yamlnodes.get(default, key)
        for script, line in yamlnodes.strings(node):
            run = check_script(script, line, file, scope, ctx)
            scope = run.scope
            go_calls.extend(call for call, _ in run.go_calls)
            tools |= run.build_tools
            for _, call_scope in run.go_calls:
                goenv.check_scope(call_scope, ctx.report)
    if golang and buildimage.builds_repository(go_calls, tools):
        owner = job if _image(job) is not None else default
        image_node = yamlnodes.get(owner, "image")
        line = yamlnodes.line(image_node) if image_node is not None else 0
        buildimage.record(ctx, file, line, image, job_scope)
