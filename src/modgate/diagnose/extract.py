"""Find the module@version a go error line is about.

The go command names the module in several shapes: ``path@version`` (most
errors, also ``path@version/go.mod`` while verifying a go.mod hash),
``path version`` (``go: downloading example.com/foo v1.0.0``), and in
go.mod errors the path and a quoted version apart
(``require example.com/foo: version "v9.9.9" invalid``). Only real versions
count (valid semantic versions, pseudo-versions, ``+incompatible``); version
queries like ``@latest`` name no version and give no module.
"""

from __future__ import annotations

import re

from modgate.protocol import semver
from modgate.protocol.module import ModuleVersion

# A module path: a dotted first element, then slash-separated elements.
_PATH = r"[a-z0-9][-a-z0-9]*(?:\.[-a-z0-9]+)+(?:/[A-Za-z0-9._~+!-]+)*"
_VERSION = r"v\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?"
_AT = re.compile(rf"(?<![\w./-])({_PATH})@({_VERSION})(?![\w.+-])")
_SPACED = re.compile(rf"(?:downloading|extracting|finding)\s+({_PATH})\s+({_VERSION})\b")
_REQUIRE = re.compile(rf"\b(?:require|replace|exclude)\s+({_PATH}):\s+version\s+\"({_VERSION})\"")
_WORDS = ("downloading", "extracting", "finding")


def _module(path: str, version: str) -> ModuleVersion | None:
    return ModuleVersion(path, version) if semver.is_valid(version) else None


def extract_module(text: str) -> ModuleVersion | None:
    """The first module@version named in ``text``, or None."""
    if "@v" in text:
        for found in _AT.finditer(text):
            module = _module(found.group(1), found.group(2))
            if module is not None:
                return module
    if "version " in text and '"' in text:
        required = _REQUIRE.search(text)
        if required is not None:
            return _module(required.group(1), required.group(2))
    if any(word in text for word in _WORDS):
        spaced = _SPACED.search(text)
        if spaced is not None:
            return _module(spaced.group(1), spaced.group(2))
    return None
