"""Malformed requests get a 4xx, never a 5xx, and no answer shows where the store lives.

The corpus ``tests/data/adversarial/malformed-requests.txt`` lists hostile
request-targets with the status each must get; a property test adds
targets assembled from hostile pieces. Both run against ``modgate serve
--upstream off`` whose proxy variables point at a recording listener, so
any outbound attempt would be seen.

Bounds: one server per test, the corpus (under 100 requests) plus 300
generated targets, every request on loopback with a 10 s limit.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adversarial.conftest import RecordingListener
from helpers.servers import ModgateFactory, Response
from modgate.protocol.errors import ModgateError
from modgate.protocol.request import parse_proxy_path
from modgate.service.sumdb import parse_sumdb_path

CORPUS = Path(__file__).parent.parent / "data" / "adversarial" / "malformed-requests.txt"
REQUEST_TIMEOUT = 10.0
FUZZ_EXAMPLES = 300


def corpus() -> list[tuple[str, str]]:
    entries = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        status, _, target = line.partition("\t")
        entries.append((status, target))
    return entries


def _problems(answer: Response, expected: str, store: Path) -> list[str]:
    problems = []
    body = answer.body.decode("utf-8", "replace")
    if expected == "4xx":
        if not 400 <= answer.status < 500:
            problems.append(f"status {answer.status}, want a 4xx")
    elif answer.status != int(expected):
        problems.append(f"status {answer.status}, want {expected}")
    for spelling in {str(store), str(store.resolve())}:
        if spelling in body:
            problems.append("the body shows the store's path")
    if "Traceback" in body or "internal error" in body:
        problems.append("the body reports an internal error")
    return problems


def test_every_corpus_request_gets_its_4xx(
    modgate: ModgateFactory, recording_listener: RecordingListener
) -> None:
    server = modgate("--upstream", "off", env=recording_listener.proxy_env())
    failures = []
    for expected, target in corpus():
        answer = server.get(target, timeout=REQUEST_TIMEOUT)
        for problem in _problems(answer, expected, server.store):
            failures.append(f"{target}: {problem}: {answer}")
    assert failures == [], "\n".join(failures)
    assert recording_listener.seen() == [], "a malformed request made modgate go out"


def test_the_parsers_refuse_the_corpus_with_their_own_errors() -> None:
    # below the server: each target is refused by the request parsers with a 4xx error
    # of modgate's own (never another exception), or accepted for the gateway to answer
    failures = []
    for expected, target in corpus():
        parse = parse_sumdb_path if target.startswith("/sumdb/") else parse_proxy_path
        try:
            parse(target)
        except ModgateError as err:
            if not 400 <= err.status < 500 or (expected != "4xx" and err.status != int(expected)):
                failures.append(f"{target}: {err.status} {err}")
        except Exception as exc:
            failures.append(f"{target}: {type(exc).__name__}: {exc}")
        else:
            if expected != "4xx":
                failures.append(f"{target}: accepted, want {expected}")
    assert failures == [], "\n".join(failures)


PIECES = [
    "/",
    "//",
    "@v",
    "/@v/",
    "@latest",
    "/@latest",
    "@",
    "%40",
    ".info",
    ".mod",
    ".zip",
    "list",
    "v1.0.0",
    "v2",
    "+incompatible",
    "-0.20200101000000-abcdefabcdef",
    "..",
    ".",
    "%2e",
    "%2E%2E",
    "%2f",
    "%2F",
    "%00",
    "%ff",
    "%",
    "%4",
    "!",
    "!a",
    "A",
    "~",
    "^",
    ":",
    "-",
    "--",
    "\\",
    "%5c",
    "_modgate",
    "sumdb/",
    "/sumdb/sum.golang.org/",
    "lookup/",
    "tile/8/0/",
    "000",
    "x001",
    ".p/",
    "github.com/a/b",
    "example.com",
    "127.0.0.1",
    "localhost",
    "a" * 300,
    "%20",
    "'",
    '"',
    "<",
    ">",
    "{",
    "}",
    "|",
    "?",
    "#",
    ";",
    "=",
]


@st.composite
def targets(draw: st.DrawFn) -> str:
    pieces = draw(st.lists(st.sampled_from(PIECES), min_size=1, max_size=12))
    return "/" + "".join(pieces).lstrip("/")


def test_generated_hostile_targets_never_get_a_5xx(
    modgate: ModgateFactory, recording_listener: RecordingListener
) -> None:
    server = modgate("--upstream", "off", env=recording_listener.proxy_env())
    seen_statuses: set[int] = set()

    @settings(
        max_examples=FUZZ_EXAMPLES,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(target=targets())
    def check(target: str) -> None:
        answer = server.get(target, timeout=REQUEST_TIMEOUT)
        seen_statuses.add(answer.status)
        assert answer.status < 500, f"{target}: {answer}"
        assert str(server.store) not in answer.body.decode("utf-8", "replace"), target

    check()
    assert seen_statuses & {400, 404}, f"the generator never reached the router: {seen_statuses}"
    assert recording_listener.seen() == []


def test_store_failures_answer_without_the_store_path(modgate: ModgateFactory) -> None:
    server = modgate("--upstream", "off")
    # an artifact the store cannot read: a directory where its file should be
    broken = server.store / "example.com" / "m" / "@v" / "v1.0.0.info"
    broken.mkdir(parents=True)
    answer = server.get("/example.com/m/@v/v1.0.0.info")
    body = answer.body.decode()
    assert answer.status >= 400, str(answer)
    assert str(server.store) not in body and str(server.store.resolve()) not in body, body
    # /readyz when the store's state folder cannot be written
    meta = server.store / "_modgate" / "meta"
    shutil.rmtree(meta)
    meta.write_text("not a directory")
    ready = server.get("/readyz")
    assert ready.status == 503, str(ready)
    text = ready.body.decode()
    assert str(server.store.resolve()) not in text and "<store>" in text, text
