"""Kubernetes manifests: containers that run go, their env, caches and security context.

Workloads are Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets,
Jobs and CronJobs (and ``List`` items), in any document of a multi-document
file. Each container and initContainer gets its env from ``envFrom``
ConfigMaps (found anywhere in the scan, by name) overridden by ``env``. A
container "runs go" when its image is ``golang`` or its command runs a go
command. For those, the module and build caches must be writable: under a
read-only root file system they need a volume, and a UID without a passwd
entry has HOME=/, so the default build cache ``/.cache/go-build`` cannot be
created.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from yaml.nodes import Node

from modgate.doctor.analyzers import buildimage, goenv
from modgate.doctor.analyzers.context import RepoContext
from modgate.doctor.analyzers.goenv import Scope, Setting
from modgate.doctor.analyzers.shell import ScriptRun, check_script
from modgate.doctor.catalog import (
    GM037_JOB_WITHOUT_TIMEOUT,
    GM038_READONLY_ROOTFS_CACHE,
    GM039_NONROOT_NO_CACHE_HOME,
)
from modgate.doctor.parsers import goimage, yamlnodes
from modgate.doctor.parsers.shellparse import FETCHING

_POD_TEMPLATE_PATHS = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
_JOB_KINDS = frozenset({"Job", "CronJob"})
_SHELLS = frozenset({"sh", "bash", "ash", "/bin/sh", "/bin/bash", "/bin/ash"})
_TRUE = "true"
_ROOT_HOME = "/root"
_NO_PASSWD_HOME = "/"  # noqa: S105 (a directory, not a password)


@dataclass(slots=True)
class ConfigMaps:
    """ConfigMaps of the whole scan, by name: data texts and their Go settings."""

    data: dict[str, dict[str, tuple[str, int]]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def settings(self, name: str) -> list[Setting]:
        found = []
        for key, (value, line) in self.data.get(name, {}).items():
            if key in goenv.WATCHED:
                found.append(Setting(key, value, self.files[name], line))
        return found


def collect_configmaps(file: str, text: str, maps: ConfigMaps, ctx: RepoContext) -> None:
    for doc in yamlnodes.documents(text):
        for obj in _objects(doc):
            if yamlnodes.get_scalar(obj, "kind") != "ConfigMap":
                continue
            name = yamlnodes.get_scalar(yamlnodes.get(obj, "metadata"), "name") or ""
            entries = {}
            for key, key_node, value in yamlnodes.items(yamlnodes.get(obj, "data")):
                text_value = yamlnodes.scalar(value)
                if text_value is not None:
                    entries[key] = (text_value, yamlnodes.line(key_node))
            maps.data[name] = entries
            maps.files[name] = file
            for setting in maps.settings(name):
                goenv.check_setting(setting, ctx.modules, ctx.report)


def _objects(doc: Node) -> list[Node]:
    if yamlnodes.get_scalar(doc, "kind") == "List":
        return yamlnodes.sequence(yamlnodes.get(doc, "items"))
    return [doc]


def _path(node: Node | None, keys: tuple[str, ...]) -> Node | None:
    for key in keys:
        node = yamlnodes.get(node, key)
    return node


def check_manifest(file: str, text: str, maps: ConfigMaps, ctx: RepoContext) -> None:
    for doc in yamlnodes.documents(text):
        for obj in _objects(doc):
            kind = yamlnodes.get_scalar(obj, "kind") or ""
            if kind not in _POD_TEMPLATE_PATHS:
                continue
            template = _path(obj, _POD_TEMPLATE_PATHS[kind])
            spec = yamlnodes.get(template, "spec")
            runs = _check_pod(file, spec, maps, ctx)
            if runs and kind in _JOB_KINDS:
                job_spec = _path(
                    obj, ("spec",) if kind == "Job" else ("spec", "jobTemplate", "spec")
                )
                if yamlnodes.get(job_spec, "activeDeadlineSeconds") is None:
                    ctx.report.emit(
                        GM037_JOB_WITHOUT_TIMEOUT,
                        file,
                        yamlnodes.key_line(obj, "kind"),
                        f"{kind} downloads Go modules without activeDeadlineSeconds: "
                        "a hung proxy keeps it running forever",
                    )


@dataclass(slots=True)
class _Pod:
    volumes: dict[str, Node]
    run_as_user: tuple[str, int] | None


def _check_pod(file: str, spec: Node | None, maps: ConfigMaps, ctx: RepoContext) -> bool:
    volumes = {
        yamlnodes.get_scalar(v, "name") or "": v
        for v in yamlnodes.sequence(yamlnodes.get(spec, "volumes"))
    }
    pod = _Pod(volumes, _run_as_user(yamlnodes.get(spec, "securityContext")))
    fetched = False
    for key in ("initContainers", "containers"):
        for container in yamlnodes.sequence(yamlnodes.get(spec, key)):
            fetched = _check_container(file, container, pod, maps, ctx) or fetched
    return fetched


def _run_as_user(security: Node | None) -> tuple[str, int] | None:
    node = yamlnodes.get(security, "runAsUser")
    value = yamlnodes.scalar(node)
    return (value, yamlnodes.line(node)) if value is not None and node is not None else None


def _env(file: str, container: Node, maps: ConfigMaps, ctx: RepoContext) -> list[Setting]:
    settings: list[Setting] = []
    for source in yamlnodes.sequence(yamlnodes.get(container, "envFrom")):
        name = yamlnodes.get_scalar(yamlnodes.get(source, "configMapRef"), "name")
        if name is not None:
            settings.extend(maps.settings(name))
    for entry in yamlnodes.sequence(yamlnodes.get(container, "env")):
        name = yamlnodes.get_scalar(entry, "name")
        if name not in goenv.WATCHED or name is None:
            continue
        value = yamlnodes.get_scalar(entry, "value")
        line = yamlnodes.key_line(entry, "name")
        setting = Setting(
            name, value or "", file, line, known=value is not None and "$(" not in value
        )
        goenv.check_setting(setting, ctx.modules, ctx.report)
        settings.append(setting)
    return settings


def _check_container(
    file: str, container: Node, pod: _Pod, maps: ConfigMaps, ctx: RepoContext
) -> bool:
    image_text = yamlnodes.get_scalar(container, "image") or ""
    golang = bool(image_text) and goimage.is_golang(goimage.parse_image(image_text))
    scope = goenv.scope_from(_env(file, container, maps, ctx), toolchain_local=golang)
    goenv.check_scope(scope, ctx.report)
    mounts = _mounts(container, pod)
    security = yamlnodes.get(container, "securityContext")
    user = _run_as_user(security) or pod.run_as_user
    root = user is None or user[0] == "0"
    # without runAsUser the image decides; the golang images run as root
    known_root = (golang or user is not None) or None
    as_root = root if known_root else None
    run = _script(file, container, scope=scope, mounts=mounts, maps=maps, ctx=ctx, root=as_root)
    fetches = run is not None and any(call.subcommand in FETCHING for call, _ in run.go_calls)
    if run is not None and buildimage.builds_repository(
        (call for call, _ in run.go_calls), run.build_tools
    ):
        buildimage.record(ctx, file, yamlnodes.key_line(container, "image"), image_text, scope)
    if not golang and not fetches:
        return False
    home = scope.known("HOME") or (_ROOT_HOME if root else _NO_PASSWD_HOME)
    gocache = scope.known("GOCACHE") or posixpath.join(
        scope.known("XDG_CACHE_HOME") or posixpath.join(home, ".cache"), "go-build"
    )
    gopath = scope.known("GOPATH") or ("/go" if golang else posixpath.join(home, "go"))
    gomodcache = scope.known("GOMODCACHE") or posixpath.join(gopath.split(":")[0], "pkg/mod")
    readonly = yamlnodes.get(security, "readOnlyRootFilesystem")
    if yamlnodes.scalar(readonly) == _TRUE and readonly is not None:
        unwritable = [p for p in (gomodcache, gocache) if not _writable(p, mounts)]
        if unwritable:
            ctx.report.emit(
                GM038_READONLY_ROOTFS_CACHE,
                file,
                yamlnodes.line(readonly),
                f"readOnlyRootFilesystem: {' and '.join(unwritable)} are not on a writable "
                "volume: go fails with 'read-only file system'",
            )
    if (
        user is not None
        and not root
        and not any(n in scope.settings for n in ("GOCACHE", "XDG_CACHE_HOME", "HOME"))
    ):
        ctx.report.emit(
            GM039_NONROOT_NO_CACHE_HOME,
            file,
            user[1],
            f"runAsUser {user[0]} without HOME or GOCACHE: HOME is / for a UID with no passwd "
            "entry, so go fails with 'failed to initialize build cache at /.cache/go-build: "
            "mkdir /.cache: permission denied'",
        )
    return fetches


def _mounts(container: Node, pod: _Pod) -> dict[str, tuple[bool, Node | None]]:
    """mountPath -> (writable, volume node)."""
    found = {}
    for mount in yamlnodes.sequence(yamlnodes.get(container, "volumeMounts")):
        path = yamlnodes.get_scalar(mount, "mountPath")
        if path is None:
            continue
        volume = pod.volumes.get(yamlnodes.get_scalar(mount, "name") or "")
        readonly = yamlnodes.get_scalar(mount, "readOnly") == _TRUE
        writable_kind = volume is None or yamlnodes.get(volume, "configMap") is None
        found[path.rstrip("/") or "/"] = (writable_kind and not readonly, volume)
    return found


def _writable(path: str, mounts: dict[str, tuple[bool, Node | None]]) -> bool:
    best = ""
    for mount in mounts:
        if (path == mount or path.startswith(mount.rstrip("/") + "/")) and len(mount) > len(best):
            best = mount
    return bool(best) and mounts[best][0]


def _script(
    file: str,
    container: Node,
    *,
    scope: Scope,
    mounts: dict[str, tuple[bool, Node | None]],
    maps: ConfigMaps,
    ctx: RepoContext,
    root: bool | None,
) -> ScriptRun | None:
    words = yamlnodes.strings(yamlnodes.get(container, "command"))
    words += yamlnodes.strings(yamlnodes.get(container, "args"))
    if not words:
        return None
    texts = [w for w, _ in words]
    if texts[0] in _SHELLS and len(texts) >= 3 and texts[1].startswith("-") and "c" in texts[1]:
        script, line = words[2]
    else:
        script, line = " ".join(texts), words[0][1]

    def resolve(path: str) -> tuple[str, str] | None:
        for mount_path, (_, volume) in mounts.items():
            name = yamlnodes.get_scalar(yamlnodes.get(volume, "configMap"), "name")
            if name is None or not path.startswith(mount_path + "/"):
                continue
            key = path[len(mount_path) + 1 :]
            entry = maps.data.get(name, {}).get(key)
            if entry is not None:
                return (f"ConfigMap {name} key {key}", entry[0])
        return None

    run = check_script(script, line, file, scope, ctx, as_root=root, resolver=resolve)
    for _, call_scope in run.go_calls:
        goenv.check_scope(call_scope, ctx.report)
    return run
