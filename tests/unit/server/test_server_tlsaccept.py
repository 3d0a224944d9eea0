"""The hand-overs of the TLS acceptor: bytes read before the TLS layer, and before the HTTP one."""

from __future__ import annotations

from typing import Any

from modgate.server.tlsaccept import _feed_early, _Handoff


class _Recorder:
    """Stands for the protocol that takes over: records what it is given, in order."""

    def __init__(self, keep_open: bool = False) -> None:
        self.calls: list[tuple[str, Any]] = []
        self._keep_open = keep_open
        self._buffer = bytearray(7)  # smaller than a chunk: filled in several rounds

    def connection_made(self, transport: object) -> None:
        self.calls.append(("made", transport))

    def data_received(self, data: bytes) -> None:
        self.calls.append(("data", data))

    def eof_received(self) -> bool:
        self.calls.append(("eof", None))
        return self._keep_open

    def connection_lost(self, exc: Exception | None) -> None:
        self.calls.append(("lost", exc))

    def get_buffer(self, size: int) -> bytearray:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.calls.append(("data", bytes(self._buffer[:nbytes])))


class _Transport:
    def __init__(self, protocol: object = None) -> None:
        self.protocol = protocol
        self.closed = False

    def set_protocol(self, protocol: object) -> None:
        self.protocol = protocol

    def get_protocol(self) -> object:
        return self.protocol

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def test_what_came_before_the_hand_over_reaches_the_connection_in_order() -> None:
    standin = _Handoff()
    standin.data_received(b"GET / HTTP/1.1\r\n")
    standin.data_received(b"Host: m\r\n\r\n")
    standin.eof_received()
    error = ConnectionResetError("gone")
    standin.connection_lost(error)
    conn, transport = _Recorder(), _Transport()
    standin.hand_over(conn, transport)  # type: ignore[arg-type]
    assert transport.protocol is conn, "the connection is not the transport's protocol"
    assert conn.calls == [
        ("made", transport),
        ("data", b"GET / HTTP/1.1\r\n"),
        ("data", b"Host: m\r\n\r\n"),
        ("eof", None),
        ("lost", error),
    ], conn.calls
    assert transport.closed, "an end of input the connection did not keep open left it open"


def test_a_hand_over_with_nothing_early_only_makes_the_connection() -> None:
    conn, transport = _Recorder(), _Transport()
    _Handoff().hand_over(conn, transport)  # type: ignore[arg-type]
    assert conn.calls == [("made", transport)]
    assert not transport.closed


def test_bytes_read_before_the_tls_layer_are_fed_to_it_whole_and_in_order() -> None:
    tls_layer = _Recorder()
    transport = _Transport(tls_layer)
    early = [b"0123456789abcdef", b"XYZ"]
    _feed_early(transport, early)  # type: ignore[arg-type]
    fed = b"".join(data for kind, data in tls_layer.calls if kind == "data")
    assert fed == b"0123456789abcdefXYZ", fed
    assert early == [], "fed bytes kept for a second time"


def test_nothing_is_fed_to_a_closed_transport_or_to_a_protocol_that_is_not_the_tls_layer() -> None:
    closed = _Transport(_Recorder())
    closed.closed = True
    _feed_early(closed, [b"hello"])  # type: ignore[arg-type]
    assert closed.protocol.calls == []  # type: ignore[attr-defined]
    still_plain = _Transport(_Handoff())
    _feed_early(still_plain, [b"hello"])  # type: ignore[arg-type]
    assert still_plain.protocol._early == []  # type: ignore[attr-defined]
