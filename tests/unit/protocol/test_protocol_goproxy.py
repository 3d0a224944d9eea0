"""goproxy: GOPROXY-syntax lists, read as the go command reads them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modgate.protocol.goproxy import EntryKind, ProxyEntry, ProxyList, parse_goproxy, redact_url

U, D, OFF_KIND = EntryKind.URL, EntryKind.DIRECT, EntryKind.OFF


def url(u: str, any_error: bool = False) -> ProxyEntry:
    return ProxyEntry(U, u, any_error)


DIRECT = ProxyEntry(D, None, False)
OFF = ProxyEntry(OFF_KIND, None, False)

LISTS = [
    # (GOPROXY, entries, ignored)
    ("https://proxy.golang.org,direct", (url("https://proxy.golang.org"), DIRECT), ()),
    ("direct", (DIRECT,), ()),
    ("off", (OFF,), ()),
    (
        "https://a.example|https://b.example",
        (url("https://a.example", True), url("https://b.example")),
        (),
    ),
    ("https://a.example|", (url("https://a.example", True),), ()),
    ("https://a.example,", (url("https://a.example"),), ()),
    (" https://a.example , ,, direct ", (url("https://a.example"), DIRECT), ()),
    ("\thttps://a.example\u3000|direct", (url("https://a.example", True), DIRECT), ()),
    ("proxy.example.com", (url("https://proxy.example.com"),), ()),
    ("localhost:8080", (url("https://localhost:8080"),), ()),
    ("corp/goproxy", (url("https://corp/goproxy"),), ()),
    ("http://127.0.0.1:3000/", (url("http://127.0.0.1:3000"),), ()),
    ("https://proxy.example.com/go///", (url("https://proxy.example.com/go"),), ()),
    ("HTTPS://Proxy.Example.com", (url("https://Proxy.Example.com"),), ()),
    ("file:///srv/goproxy/", (url("file:///srv/goproxy"),), ()),
    ("file:/srv/goproxy", (url("file:///srv/goproxy"),), ()),
    ("file:///", (url("file://"),), ()),
    ("https://u:p@proxy.example.com,direct", (url("https://u:p@proxy.example.com"), DIRECT), ()),
    ("direct,https://ignored.example", (DIRECT,), ("https://ignored.example",)),
    ("off|direct|https://x.example", (OFF,), ("direct", "https://x.example")),
    (
        "https://a.example,direct,not a url,https://u:secret@b.example",
        (url("https://a.example"), DIRECT),
        ("not a url", "https://xxxxx@b.example"),
    ),
]


@pytest.mark.parametrize(("value", "entries", "ignored"), LISTS)
def test_parse_goproxy(
    value: str, entries: tuple[ProxyEntry, ...], ignored: tuple[str, ...]
) -> None:
    got = parse_goproxy(value)
    assert got == ProxyList(entries, ignored), f"parse_goproxy({value!r}) = {got!r}"


BAD = [
    # (GOPROXY, words the message must hold)
    ("", "GOPROXY list is empty"),
    (" ", "contains no entries"),
    (",|,", "contains no entries"),
    ("noproxy", "'noproxy': not a URL"),
    ("proxy", "'proxy': not a URL"),
    ("/srv/goproxy", "file:///srv/goproxy"),
    ("ftp://proxy.example.com", "invalid proxy URL scheme 'ftp'"),
    ("git+ssh://proxy.example.com", "must be https, http or file"),
    ("https://a.example,ftp://b.example,direct", "'ftp://b.example'"),
    ("https://", "has no host"),
    ("https:///path", "has no host"),
    ("https://proxy.example.com:port", "not a valid URL"),
    ("https://[::1", "not a valid URL"),
    ("https://proxy.example.com/a b", "whitespace"),
    ("https://proxy.example.com/\x00", "control character"),
    ("https://proxy.example.com/?x=1", "no query or fragment"),
    ("https://proxy.example.com/#x", "no query or fragment"),
    ("file://host/srv", "file:///path"),
    ("file:relative/dir", "not a valid URL|file:///path|invalid proxy URL"),
    ("https://user:hunter2@[::1", "https://xxxxx@"),
]


@pytest.mark.parametrize(("value", "words"), BAD)
def test_parse_goproxy_rejects(value: str, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("+", r"\+").replace("[", r"\[")) as info:
        parse_goproxy(value)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("raw", "redacted"),
    [
        ("https://proxy.example.com/go", "https://proxy.example.com/go"),
        ("https://user:pass@proxy.example.com/go", "https://xxxxx@proxy.example.com/go"),
        ("https://user:@proxy.example.com", "https://xxxxx@proxy.example.com"),
        ("https://token@proxy.example.com", "https://xxxxx@proxy.example.com"),
        ("https://u:p@ss@proxy.example.com/a@b", "https://xxxxx@proxy.example.com/a@b"),
        ("https://proxy.example.com/a@b", "https://proxy.example.com/a@b"),
        ("file:///srv/go", "file:///srv/go"),
    ],
)
def test_redact_url(raw: str, redacted: str) -> None:
    assert redact_url(raw) == redacted


def test_entries_never_show_credentials() -> None:
    plist = parse_goproxy("https://user:hunter2@proxy.example.com|direct")
    entry = plist.entries[0]
    assert entry.url == "https://user:hunter2@proxy.example.com"
    assert entry.redacted() == "https://xxxxx@proxy.example.com"
    assert plist.entries[1].redacted() == "direct"
    for text in (repr(entry), repr(plist), str(plist)):
        assert "hunter2" not in text, text
    assert plist.render() == "https://user:hunter2@proxy.example.com|direct"


_hosts = st.sampled_from(["proxy.example.com", "127.0.0.1:3000", "[::1]:8080", "goproxy.corp"])
_paths = st.sampled_from(["", "/go", "/a/b", "/x%20y"])
_urls = st.one_of(
    st.builds(lambda s, h, p: f"{s}://{h}{p}", st.sampled_from(["https", "http"]), _hosts, _paths),
    st.builds(lambda p: f"file:///srv{p}", _paths),
)
_entry = st.builds(lambda u, any_error: ProxyEntry(U, u, any_error), _urls, st.booleans())


@given(
    st.lists(_entry, min_size=1, max_size=5), st.sampled_from([None, D, OFF_KIND]), st.booleans()
)
def test_render_round_trip(
    entries: list[ProxyEntry], final: EntryKind | None, spaces: bool
) -> None:
    if final is not None:
        entries = [*entries, ProxyEntry(final, None, False)]
    plist = ProxyList(tuple(entries), ())
    text = plist.render()
    if spaces:
        text = text.replace(",", " , ").replace("|", " | ")
    assert parse_goproxy(text) == plist, text


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["https://a.example", "b.example", "direct", "off", "", " "]),
            st.sampled_from([",", "|"]),
        ),
        max_size=6,
    )
)
def test_separator_after_an_entry_decides_its_fallback(tokens: list[tuple[str, str]]) -> None:
    value = "".join(t + sep for t, sep in tokens)
    want: list[ProxyEntry] = []
    for raw, sep in tokens:
        token = raw.strip()
        if not token:
            continue
        if token in ("direct", "off"):
            want.append(ProxyEntry(D if token == "direct" else OFF_KIND, None, False))
            break
        want.append(ProxyEntry(U, token if "://" in token else "https://" + token, sep == "|"))
    if not want:
        with pytest.raises(ValueError):
            parse_goproxy(value)
        return
    assert parse_goproxy(value).entries == tuple(want), value


def test_str_keeps_each_separator_and_hides_credentials() -> None:
    # the start-up log shows the chain: "|" and "," mean different things there too
    chain = parse_goproxy("https://a.example|https://user:tok@b.example,direct")
    assert str(chain) == "https://a.example|https://xxxxx@b.example,direct", str(chain)
