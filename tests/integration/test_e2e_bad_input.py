"""Malformed requests get a 4xx with a one-line text answer; no upstream or store is touched."""

from __future__ import annotations

import pytest

from helpers.modules import SampleProject
from helpers.servers import ModgateFactory, StaticProxyFactory, store_listing

LONG_ELEMENT = "a" * 10_000

BAD_PATHS = {
    "dot-dot": "/../x",
    "encoded-dot-dot": "/%2e%2e/x/@v/list",
    "bare-uppercase": "/Example.com/x/@v/list",
    "encoded-nul-path": "/%00/@v/list",
    "ten-kilobyte-path": f"/example.com/{LONG_ELEMENT}/@v/list",
    "encoded-nul-after-version": "/example.com/x/@v/v1.2.info%00",
    "word-version-mod": "/example.com/liba/@v/vfoo.mod",
    "word-version-zip": "/example.com/liba/@v/vfoo.zip",
    "short-version-mod": "/example.com/liba/@v/v1.2.mod",
    "short-version-zip": "/example.com/liba/@v/v1.2.zip",
    "v2-for-v1-path-mod": "/example.com/liba/@v/v2.0.0.mod",
    "v2-for-v1-path-zip": "/example.com/liba/@v/v2.0.0.zip",
}


def problem(status: int, content_type: str, body: bytes) -> str | None:
    """Why an answer is not a 4xx with a one-line text/plain body, or None."""
    if not 400 <= status < 500:
        return f"status {status}, expected 4xx"
    if not content_type.startswith("text/plain"):
        return f"content type {content_type!r}, expected text/plain"
    text = body.decode(errors="replace")
    if not text.strip():
        return "empty body, expected a one-line reason"
    if "\n" in text.rstrip("\n"):
        return f"body has several lines: {text[:300]!r}"
    return None


@pytest.mark.parametrize("path", BAD_PATHS.values(), ids=BAD_PATHS.keys())
def test_bad_request(
    path: str,
    sample: SampleProject,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
) -> None:
    upstream = static_proxy(sample.proxy_root)
    server = modgate("--upstream", upstream.url)
    before = store_listing(server.store)

    answer = server.get(path)

    shown = path if len(path) < 100 else path[:60] + f"...({len(path)} chars)"
    wrong = problem(answer.status, answer.content_type, answer.body)
    assert wrong is None, f"GET {shown}: {wrong} ({answer})"
    after = store_listing(server.store)
    assert after == before, f"GET {shown} changed the store: {sorted(set(after) - set(before))}"
    asked = upstream.seen()
    assert not asked, f"GET {shown} is invalid, yet modgate asked the upstream for {asked}"
