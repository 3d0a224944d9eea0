"""golang images named outside Dockerfiles that build the repository.

A Kubernetes container (a Job that runs ``go build``), a GitHub Actions job
``container:``, a GitLab job ``image:`` or a Jenkins ``docker`` agent with an
official golang image runs the Go of its tag, with GOTOOLCHAIN=local from Go
1.21 on. When its go commands read the repository's go.mod (anything but
``go install pkg@version``, ``go run pkg@version``, ``go env`` and ``go
version``; or a build tool such as make), go.mod's go line must not be newer
than that Go. :func:`record` adds such an image to the context, and
:func:`modgate.doctor.analyzers.gomod.check_images` compares them all at the end.
"""

from __future__ import annotations

from collections.abc import Iterable

from modgate.doctor.analyzers import goenv
from modgate.doctor.analyzers.context import GolangImage, RepoContext
from modgate.doctor.analyzers.goenv import Scope
from modgate.doctor.parsers import goimage
from modgate.doctor.parsers.shellparse import GoCall

_OUTSIDE_MODULE = frozenset({"env", "version", "help", "telemetry"})
_BUILD_TOOLS = frozenset({"make", "gmake", "mage", "task", "goreleaser"})


def reads_gomod(call: GoCall) -> bool:
    """Whether a go command reads the go.mod of the directory it runs in."""
    if call.subcommand in _OUTSIDE_MODULE or not call.subcommand:
        return False
    positional = [a.text for a in call.args if not a.text.startswith("-")]
    return not (call.subcommand in ("install", "run") and any("@" in a for a in positional))


def builds_repository(calls: Iterable[GoCall], commands: Iterable[str] = ()) -> bool:
    return any(reads_gomod(c) for c in calls) or bool(set(commands) & _BUILD_TOOLS)


def record(ctx: RepoContext, file: str, line: int, image_text: str | None, scope: Scope) -> None:
    """Remember a golang image that builds the repository with the settings ``scope``."""
    if not image_text or "$" in image_text or "{{" in image_text:
        return  # chosen by a variable: its Go version is not known here
    image = goimage.parse_image(image_text.strip())
    in_image = Scope(scope.settings, toolchain_local=True)  # the image sets GOTOOLCHAIN=local
    if not goimage.is_golang(image) or goenv.toolchain_download_possible(in_image):
        return
    toolchain = scope.settings.get("GOTOOLCHAIN")
    if toolchain is not None and not (toolchain.known and toolchain.value == "local"):
        return
    version = goimage.tag_version(image.tag)
    if version is not None and goimage.sets_toolchain_local(version):
        ctx.golang_images.append(
            GolangImage(file, line, f"{image.repository}:{image.tag}", version)
        )
