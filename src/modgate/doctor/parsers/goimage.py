"""Container image references, the official golang images, and Go version order.

``golang:1.23.4-bookworm`` is the official image (``golang``,
``library/golang``, ``docker.io/library/golang`` or a mirror ending in
``/golang``) with Go 1.23.4 on Debian. Its tag names a Go version with up
to three parts; ``golang:1.23`` follows the latest 1.23 patch release, and a
tag without a minor version (``latest``, ``alpine``, ``1``) follows new
minor releases too, which is what makes it floating.

Go versions compare the way ``go/version`` (gover) does: ``1.21`` (a
language version) < ``1.21rc1`` < ``1.21.0`` < ``1.21.1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TAG_VERSION_RE = re.compile(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:(alpha|beta|rc)(\d+))?(?=$|-)")
_GO_VERSION_RE = re.compile(r"(?:go)?(\d+)\.(\d+)(?:\.(\d+))?(?:(alpha|beta|rc)(\d+))?")
_PRERELEASE_RANK = {"alpha": 0, "beta": 1, "rc": 2}
_LANGUAGE, _PRERELEASE, _RELEASE = 0, 1, 2
_OPEN_ENDED = 1 << 30
TOOLCHAIN_LOCAL_SINCE = (1, 21)
"""Official images set GOTOOLCHAIN=local from Go 1.21 on (toolchain switching began there)."""
_NO_GIT_FAMILIES = ("alpine", "scratch", "distroless", "busybox", "static", "chainguard/static")


@dataclass(frozen=True, slots=True)
class ImageRef:
    repository: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """The last path element of the repository (``golang``)."""
        return self.repository.rsplit("/", 1)[-1]


def parse_image(reference: str) -> ImageRef:
    ref, _, digest = reference.partition("@")
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ImageRef(ref[:colon].lower(), ref[colon + 1 :], digest or None)
    return ImageRef(ref.lower(), None, digest or None)


def is_golang(image: ImageRef) -> bool:
    return image.name == "golang"


VersionKey = tuple[int, int, int, int, int]


def go_version_key(version: str) -> VersionKey | None:
    """An ordering key for ``1.21``, ``1.21rc1``, ``1.21.0`` or ``go1.21.0``; None if malformed."""
    m = _GO_VERSION_RE.fullmatch(version.strip())
    if m is None:
        return None
    major, minor, patch, kind, number = m.groups()
    if kind is not None:
        return (int(major), int(minor), _PRERELEASE, _PRERELEASE_RANK[kind], int(number))
    if patch is None:
        return (int(major), int(minor), _LANGUAGE, 0, 0)
    return (int(major), int(minor), _RELEASE, 0, int(patch))


def tag_version(tag: str | None) -> str | None:
    """The Go version a golang image tag names (``1.23``, ``1.23.4``), or None (``latest``)."""
    if not tag:
        return None
    m = _TAG_VERSION_RE.match(tag)
    if m is None or m.group(2) is None:
        return None
    return m.group(0)


def newest_in_tag(version: str) -> VersionKey | None:
    """The highest Go version an image tagged ``version`` can hold (``1.23`` -> any 1.23.x)."""
    key = go_version_key(version)
    if key is None:
        return None
    if key[2] == _LANGUAGE:
        return (key[0], key[1], _RELEASE, 0, _OPEN_ENDED)
    return key


def is_floating(image: ImageRef) -> bool:
    """No tag, ``latest``, or a tag without a Go minor version; a digest pins anything."""
    if image.digest:
        return False
    return tag_version(image.tag) is None


def variant(tag: str | None) -> str:
    """The OS part of a golang tag, with its dash (``-alpine``, ``-bookworm``), or ``""``."""
    if not tag:
        return ""
    if tag_version(tag) is not None or _TAG_VERSION_RE.match(tag):
        _, dash, rest = tag.partition("-")
        return f"-{rest}" if dash else ""
    return "" if tag == "latest" else f"-{tag}"


def sets_toolchain_local(version: str | None) -> bool:
    key = go_version_key(version) if version else None
    return key is not None and (key[0], key[1]) >= TOOLCHAIN_LOCAL_SINCE


def has_git(image: ImageRef) -> bool | None:
    """Whether the image ships git: Debian golang images do, Alpine and minimal ones do not."""
    tag = image.tag or ""
    if is_golang(image):
        if "alpine" in tag:
            return False
        if "windows" in tag or "nanoserver" in tag:
            return None
        return True
    if image.repository == "scratch" or any(f in image.repository for f in _NO_GIT_FAMILIES):
        return False
    return None


def has_c_compiler(image: ImageRef) -> bool | None:
    """Debian golang images ship gcc; Alpine ones do not."""
    if is_golang(image):
        return "alpine" not in (image.tag or "")
    if image.name == "alpine":
        return False
    return None
