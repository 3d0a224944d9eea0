"""The negative cache gives back the refusal it remembered, word for word."""

from __future__ import annotations

from modgate.formats.ziprules import FileProblem, InvalidZipError, Problem
from modgate.protocol.errors import InvalidModuleError, NotFoundError
from modgate.protocol.module import ModuleVersion
from modgate.service.ttlcache import NegativeCache


def test_an_invalid_zip_is_remembered_with_its_message() -> None:
    # regression: the remembered InvalidZipError was rebuilt as InvalidZipError(subject,
    # reason), which read the reason's characters as problems ("invalid module zip: i; n; v")
    mv = ModuleVersion("example.com/m", "v1.0.0")
    original = InvalidZipError(mv, [FileProblem("a.go", Problem.CRC)])
    cache = NegativeCache(60)
    cache.remember("k", original)
    again = cache.error("k")
    assert again is not None
    assert str(again) == str(original), f"remembered {str(again)!r}, refused {str(original)!r}"
    assert isinstance(again, InvalidModuleError)


def test_a_plain_error_keeps_its_class() -> None:
    cache = NegativeCache(60)
    cache.remember("k", NotFoundError("example.com/m@v1.0.0", "no such version"))
    again = cache.error("k")
    assert type(again) is NotFoundError and str(again) == "example.com/m@v1.0.0: no such version"
