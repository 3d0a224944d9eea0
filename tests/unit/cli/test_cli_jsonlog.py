"""The log setup: library loggers that log every request stay quiet unless debugging."""

from __future__ import annotations

import io
import json
import logging

import pytest

from modgate.cli import jsonlog


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    levels = {name: logging.getLogger(name).level for name in jsonlog.QUIET_LIBRARIES}
    yield None
    root.handlers[:], root.level = saved[0], saved[1]
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_httpx_request_lines_are_left_out_at_info() -> None:
    out = io.StringIO()
    jsonlog.setup("info", out)
    logging.getLogger("httpx").info("HTTP Request: GET http://upstream/x")
    logging.getLogger("httpx").warning("something worth seeing")
    logging.getLogger("modgate.gateway").info("own event")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["logger"], r["msg"]) for r in lines] == [
        ("httpx", "something worth seeing"),
        ("modgate.gateway", "own event"),
    ]


def test_debug_level_shows_them() -> None:
    out = io.StringIO()
    jsonlog.setup("debug", out)
    logging.getLogger("httpx").info("HTTP Request: GET http://upstream/x")
    assert "HTTP Request" in out.getvalue()
