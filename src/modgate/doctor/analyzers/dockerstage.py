"""A Dockerfile stage as BuildKit builds it, and the walk over a Dockerfile's stages.

``FROM <stage>`` inherits the stage's ENV, user, installed packages and copied
files (:meth:`Stage.child`); ARGs are never inherited. The module cache of a
stage is GOMODCACHE, else ``$GOPATH/pkg/mod``, else ``/go/pkg/mod`` in the
official golang images (GOPATH=/go) and ``/root/go/pkg/mod`` elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from modgate.doctor.analyzers import goenv
from modgate.doctor.analyzers.context import RepoContext
from modgate.doctor.analyzers.goenv import Scope, Setting
from modgate.doctor.catalog import Rule
from modgate.doctor.parsers import goimage

MODCACHE_TARGETS = ("/go/pkg/mod", "/root/go/pkg/mod")


@dataclass(slots=True)
class Stage:
    index: int
    name: str | None
    line: int
    image: goimage.ImageRef | None
    """The image at the root of the stage's FROM chain (None when unresolved)."""
    image_line: int = 0
    env: dict[str, Setting] = field(default_factory=dict)
    pending: dict[str, Setting] = field(default_factory=dict)
    """Settings not judged yet: no go command has run since they were set."""
    values: dict[str, str | None] = field(default_factory=dict)
    args: set[str] = field(default_factory=set)
    root: bool = True
    user_line: int = 0
    packages: set[str] = field(default_factory=set)
    gomod_line: int = 0
    gosum_line: int = 0
    download_mounts: list[tuple[str, int]] = field(default_factory=list)
    root_fill_line: int = 0
    root_filled_all: bool = False
    """Root ran a bare ``go mod download``: later builds need nothing new."""
    builds_module: bool = False
    """A go command (or make, a build script) ran with go.mod in the stage."""
    go_replaced: bool = False
    """Go is replaced before use (GOTOOLCHAIN=goX.Y, gimme, a downloaded Go)."""
    tag_known: bool = True
    """False when the build may choose the image's tag with --build-arg."""
    image_args: frozenset[str] = frozenset()
    """Global ARGs whose defaults chose the image (a --build-arg may choose another)."""
    sources_unknown: bool = False
    """Files arrived in a way doctor does not follow (git clone, COPY --from, ADD URL)."""
    reported_mount: bool = False
    reported: set[Rule] = field(default_factory=set)
    """Rules already reported once for this stage."""

    def child(self, index: int, name: str | None, line: int) -> Stage:
        """A stage built FROM this one: ENV, user, packages and files carry over; ARGs do not."""
        values = {k: v for k, v in self.values.items() if k in self.env}
        return replace(
            self,
            index=index,
            name=name,
            line=line,
            env=dict(self.env),
            pending={},
            values=values,
            args=set(),
            packages=set(self.packages),
            download_mounts=list(self.download_mounts),
            builds_module=False,
            reported_mount=False,
            reported=set(),
        )

    @property
    def official_golang(self) -> bool:
        return self.image is not None and goimage.is_golang(self.image)

    def scope(self) -> Scope:
        return goenv.scope_from(self.env.values(), toolchain_local=self.official_golang)


@dataclass(slots=True)
class Walk:
    """One Dockerfile being walked: its global ARGs, its stages so far, where ENV came from."""

    file: str
    ctx: RepoContext
    global_args: dict[str, tuple[str | None, int]] = field(default_factory=dict)
    arg_sources: dict[str, frozenset[str]] = field(default_factory=dict)
    """Global ARG -> the global ARGs its value was built from (itself included)."""
    stages: list[Stage] = field(default_factory=list)
    env_origins: dict[str, tuple[Stage, Setting]] = field(default_factory=dict)
    reported_globals: set[str] = field(default_factory=set)


def label(stage: Stage) -> str:
    return f"'{stage.name}'" if stage.name else f"#{stage.index}"


def modcache(stage: Stage) -> str:
    gomodcache = stage.values.get("GOMODCACHE")
    if gomodcache:
        return gomodcache.rstrip("/")
    gopath = stage.values.get("GOPATH")
    if gopath:
        return gopath.split(":", 1)[0].rstrip("/") + "/pkg/mod"
    return MODCACHE_TARGETS[0] if stage.official_golang else MODCACHE_TARGETS[1]


def once(stage: Stage, rule: Rule) -> bool:
    """True the first time ``rule`` is reported for ``stage``."""
    if rule in stage.reported:
        return False
    stage.reported.add(rule)
    return True
