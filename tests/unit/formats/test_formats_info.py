""".info JSON: parsing what proxies send, checking it answers the request, rendering it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modgate.formats.info import (
    MAX_INFO_SIZE,
    Info,
    check_info_for,
    parse_info,
    parse_time,
    render_info,
)
from modgate.protocol.errors import InvalidModuleError
from modgate.protocol.module import ModuleVersion

SUBJECT = "example.com/m@v1.0.0"
ORIGIN = {
    "VCS": "git",
    "URL": "https://example.com/mod1",
    "Hash": "0123456789abcdef0123456789abcdef01234567",
    "Ref": "refs/tags/v1.0.0",
}


@pytest.mark.parametrize(
    ("body", "want"),
    [
        (b'{"Version":"v1.0.0"}', Info("v1.0.0")),
        (
            b'{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}',
            Info("v1.0.0", "2024-01-02T03:04:05Z"),
        ),
        (b'{"version":"v1.0.0","TIME":null}', Info("v1.0.0")),
        (b'{"Version":"v0.1.0","Version":"v1.0.0"}', Info("v1.0.0")),  # last one wins
        (b'{"Version":"v1.0.0","Name":"abc","Short":"x"}', Info("v1.0.0")),
        (b' {"Version":"v2.0.0+incompatible"}\n', Info("v2.0.0+incompatible")),
        (
            b'{"Version":"v1.0.0","Time":"2024-01-02T03:04:05.123456789+01:00"}',
            Info("v1.0.0", "2024-01-02T03:04:05.123456789+01:00"),
        ),
        (
            b'{"Version":"v1.0.0","Origin":' + json.dumps(ORIGIN).encode() + b"}",
            Info("v1.0.0", None, ORIGIN),
        ),
        (
            b'{"Version":"v1.0.0","Origin":{"B":1,"A":{"y":[1,{}],"x":[]}}}',
            Info("v1.0.0", None, {"B": 1, "A": {"y": [1, {}], "x": []}}),
        ),
    ],
)
def test_parse_info(body: bytes, want: Info) -> None:
    got = parse_info(body, SUBJECT)
    assert got == want, f"parse_info({body!r}) = {got}, expected {want}"
    if got.origin is not None:
        assert list(got.origin) == list(want.origin or {}), "Origin key order was not kept"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'"v1.0.0"',
        b"null",
        b"{}",
        b'{"Version":""}',
        b'{"Version":1}',
        b'{"Version":null}',
        b'{"Version":"1.0.0"}',
        b'{"Version":"v1.0"}',
        b'{"Version":"v1.0.0+build"}',
        b'{"Version":"v1.0.0","Time":"yesterday"}',
        b'{"Version":"v1.0.0","Time":"2024-01-02 03:04:05Z"}',
        b'{"Version":"v1.0.0","Time":"2024-02-30T03:04:05Z"}',
        b'{"Version":"v1.0.0","Time":"2024-01-02T03:04:05"}',
        b'{"Version":"v1.0.0","Time":12}',
        b'{"Version":"v1.0.0","Origin":"git"}',
        b'{"Version":"v1.0.0","Origin":[]}',
        b'{"Version":"v1.0.0","x":NaN}',
        b'{"Version":"v1.0.0"} {}',
        b'{"Version":"v1.0.0\xff"}',
        b'{"Version":"v1.0.0","Pad":"' + b"x" * MAX_INFO_SIZE + b'"}',
    ],
)
def test_parse_info_rejects(body: bytes) -> None:
    with pytest.raises(InvalidModuleError) as caught:
        parse_info(body, SUBJECT)
    assert caught.value.subject == SUBJECT, f"error names {caught.value.subject!r}"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05.5Z", datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)),
        ("2024-01-02T04:04:05+01:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T00:04:05-03:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05.1234567891Z", datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
    ],
)
def test_parse_time(text: str, want: datetime) -> None:
    assert parse_time(text) == want


@pytest.mark.parametrize(
    ("mv", "version", "ok"),
    [
        (ModuleVersion("example.com/m", "v1.0.0"), "v1.0.0", True),
        (ModuleVersion("example.com/m", "v1.0.0"), "v1.0.1", False),
        (ModuleVersion("example.com/m", "master"), "v0.0.0-20240102030405-abcdefabcdef", True),
        (ModuleVersion("example.com/m", "v1.0"), "v1.0.0", True),
        (ModuleVersion("example.com/m", "abc123"), "v1.2.3", True),
        (ModuleVersion("example.com/m/v2", "master"), "v1.2.3", False),
        (ModuleVersion("example.com/m/v2", "master"), "v2.1.0", True),
        (ModuleVersion("example.com/m", "v2.0.0+incompatible"), "v2.0.0+incompatible", True),
    ],
)
def test_check_info_for(mv: ModuleVersion, version: str, ok: bool) -> None:
    info = Info(version)
    if ok:
        check_info_for(info, mv)
        return
    with pytest.raises(InvalidModuleError) as caught:
        check_info_for(info, mv)
    assert caught.value.subject == str(mv), f"error names {caught.value.subject!r}"


def test_check_info_for_message_matches_go() -> None:
    with pytest.raises(InvalidModuleError) as caught:
        check_info_for(Info("v1.0.1"), ModuleVersion("example.com/m", "v1.0.0"))
    assert "proxy returned info for version v1.0.1 instead of requested version" in str(
        caught.value
    )


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (("v1.0.0", None, None), b'{"Version":"v1.0.0"}'),
        (
            ("v1.0.0", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), None),
            b'{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}',
        ),
        (
            (
                "v1.0.0",
                datetime(2024, 1, 2, 4, 4, 5, 120000, tzinfo=timezone(timedelta(hours=1))),
                None,
            ),
            b'{"Version":"v1.0.0","Time":"2024-01-02T03:04:05.12Z"}',
        ),
        (
            ("v1.0.0", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), ORIGIN),
            b'{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z","Origin":{"VCS":"git",'
            b'"URL":"https://example.com/mod1","Hash":"0123456789abcdef0123456789abcdef01234567",'
            b'"Ref":"refs/tags/v1.0.0"}}',
        ),
        (
            ("v1.0.0", None, {"URL": "https://a/?x=1&y=<2>", "Note": "ü\u2028"}),
            b'{"Version":"v1.0.0","Origin":{"URL":"https://a/?x=1\\u0026y=\\u003c2\\u003e",'
            b'"Note":"\xc3\xbc\\u2028"}}',
        ),
    ],
)
def test_render_info(args: tuple[str, datetime | None, dict[str, Any] | None], want: bytes) -> None:
    got = render_info(*args)
    assert got == want, f"render_info{args} =\n{got!r}\nexpected\n{want!r}"


def test_render_info_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone"):
        render_info("v1.0.0", datetime(2024, 1, 2, 3, 4, 5))


@given(
    st.sampled_from(["v1.0.0", "v0.0.0-20240102030405-abcdefabcdef", "v2.1.0-rc.1"]),
    st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    st.none() | st.dictionaries(st.text(max_size=5), st.text(max_size=10), max_size=4),
)
def test_render_parse_round_trip(
    version: str, time: datetime, origin: dict[str, str] | None
) -> None:
    info = parse_info(render_info(version, time, origin), SUBJECT)
    assert info.version == version
    assert info.time is not None and parse_time(info.time) == time, f"{info.time} != {time}"
    assert info.origin == origin
