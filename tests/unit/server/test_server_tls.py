"""TLS: key file permissions, loading a pair, swapping it while serving, no sendfile under TLS."""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import shutil
import ssl
from pathlib import Path

import pytest
from server_support import INFO_PATH, ZIP_PATH, Client, FakeGateway, run

from helpers.tlscerts import CertPair, TestCA, peer_common_name
from modgate.server.app import ServerHandle, start_server
from modgate.server.tls import (
    TlsCertificate,
    TlsError,
    certificate_not_after,
    check_key_permissions,
    load_context,
)

IO_TIMEOUT = 5.0


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "ca")


NOBODY = 65534


def owned_by_a_user(key: Path) -> Path:
    """``key`` owned by a user other than root (the tests may run as root)."""
    if os.geteuid() == 0:
        os.chown(key, NOBODY, NOBODY)
    return key


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_a_key_only_its_owner_can_read_is_accepted(ca: TestCA, mode: int) -> None:
    key = owned_by_a_user(ca.issue("server").key)
    key.chmod(mode)
    check_key_permissions(key)


@pytest.mark.parametrize("mode", [0o640, 0o440, 0o604, 0o644, 0o620, 0o602, 0o660])
def test_a_key_group_or_others_can_access_is_refused(ca: TestCA, mode: int) -> None:
    pair = ca.issue("server")
    owned_by_a_user(pair.key).chmod(mode)
    with pytest.raises(TlsError) as caught:
        check_key_permissions(pair.key)
    message = str(caught.value)
    assert f"chmod 600 {pair.key}" in message, message
    assert f"{mode:04o}" in message, message
    with pytest.raises(TlsError):
        load_context(pair.cert, pair.key)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root can make root-owned files")


@needs_root
@pytest.mark.parametrize("mode", [0o640, 0o440, 0o600])
def test_a_root_owned_key_may_be_readable_by_its_group(ca: TestCA, mode: int) -> None:
    # Debian's ssl-cert group; Kubernetes secret volumes with an fsGroup (root:fsGroup 0440).
    pair = ca.issue("server")
    os.chown(pair.key, 0, NOBODY)
    pair.key.chmod(mode)
    check_key_permissions(pair.key)
    load_context(pair.cert, pair.key)


@needs_root
@pytest.mark.parametrize("mode", [0o660, 0o650, 0o644, 0o604, 0o601])
def test_a_root_owned_key_others_can_access_or_its_group_write_is_refused(
    ca: TestCA, mode: int
) -> None:
    pair = ca.issue("server")
    os.chown(pair.key, 0, NOBODY)
    pair.key.chmod(mode)
    with pytest.raises(TlsError) as caught:
        check_key_permissions(pair.key)
    message = str(caught.value)
    assert f"chmod 600 {pair.key}" in message and "chmod 640" in message, message
    assert f"{mode:04o}" in message, message


def test_a_symlink_is_judged_by_the_file_it_points_to(ca: TestCA, tmp_path: Path) -> None:
    # Kubernetes mounts secrets as symlinks into a ..data folder.
    pair = ca.issue("server")
    link = tmp_path / "tls.key"
    link.symlink_to(pair.key)
    check_key_permissions(link)
    pair.key.chmod(0o644)
    with pytest.raises(TlsError, match="0644"):
        check_key_permissions(link)


def test_a_context_speaks_http11_over_tls12_or_later(ca: TestCA) -> None:
    pair = ca.issue("server")
    context = load_context(pair.cert, pair.key)
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_TICKET


BAD_PAIRS = {
    "key of another certificate": lambda a, b: (a.cert, b.key, "does not belong|mismatch"),
    "certificate file missing": lambda a, b: (a.cert.with_name("nope.crt"), a.key, "nope.crt"),
    "garbage certificate": lambda a, b: (_garbage(a.cert), a.key, "PEM"),
    "garbage key": lambda a, b: (a.cert, _garbage(a.key), "PEM"),
}


def _garbage(path: Path) -> Path:
    bad = path.with_name("garbage-" + path.name)
    bad.write_text("not PEM at all\n")
    bad.chmod(0o600)
    return bad


@pytest.mark.parametrize("case", BAD_PAIRS.values(), ids=BAD_PAIRS.keys())
def test_a_bad_pair_is_refused_with_the_files_named(ca: TestCA, case: object) -> None:
    a, b = ca.issue("a"), ca.issue("b")
    cert, key, why = case(a, b)  # type: ignore[operator]
    with pytest.raises(TlsError, match=why) as caught:
        load_context(cert, key)
    message = str(caught.value)
    assert str(cert) in message or str(key) in message, message
    assert "\n" not in message, message


# ---- through the server ------------------------------------------------------------------------


async def connect(handle: ServerHandle, ca: TestCA) -> tuple[Client, str]:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(
            "127.0.0.1",
            handle.port,
            ssl=ca.client_context(),
            server_hostname="localhost",
            limit=1 << 24,
        ),
        IO_TIMEOUT,
    )
    ssl_object = writer.get_extra_info("ssl_object")
    assert ssl_object.selected_alpn_protocol() == "http/1.1"
    return Client(reader, writer), peer_common_name(ssl_object)


def install(pair: CertPair, live: CertPair) -> None:
    """Put ``pair``'s files where the server reads its certificate from."""
    shutil.copyfile(pair.cert, live.cert)
    shutil.copyfile(pair.key, live.key)


def test_reload_swaps_the_pair_for_new_handshakes_and_keeps_open_connections(
    ca: TestCA, tmp_path: Path
) -> None:
    old, new = ca.issue("old"), ca.issue("new")
    live_dir = tmp_path / "live"
    live_dir.mkdir()
    live = CertPair(live_dir / "tls.crt", live_dir / "tls.key", "")
    live.key.touch(mode=0o600)
    install(old, live)
    tls = TlsCertificate(live.cert, live.key)

    async def main() -> None:
        handle = await start_server(FakeGateway(), tls=tls)
        try:
            before, name = await connect(handle, ca)
            assert name == "old"
            assert (await before.get(INFO_PATH)).status == 200

            install(new, live)
            tls.reload()
            after, name = await connect(handle, ca)
            assert name == "new", "a handshake after the reload still got the old certificate"
            resp = await before.get(INFO_PATH)
            assert resp.status == 200, f"the connection opened before the reload: {resp}"
            assert (await after.get(INFO_PATH)).status == 200

            live.cert.write_text("broken\n")
            with pytest.raises(TlsError):
                tls.reload()
            third, name = await connect(handle, ca)
            assert name == "new", "a refused reload changed the certificate"
            for client in (before, after, third):
                assert (await client.get(INFO_PATH)).status == 200
                await client.close()
        finally:
            await handle.close(grace=1.0)

    run(main())


def test_reload_updates_when_the_pair_in_use_expires(ca: TestCA, tmp_path: Path) -> None:
    # The expiry metric (modgate_tls_certificate_expiry_timestamp_seconds) reads not_after.
    short = ca.issue("short", valid_for=datetime.timedelta(days=20))
    long = ca.issue("long", valid_for=datetime.timedelta(days=60))
    live = CertPair(tmp_path / "tls.crt", tmp_path / "tls.key", "")
    live.key.touch(mode=0o600)
    install(short, live)
    tls = TlsCertificate(live.cert, live.key)
    assert tls.not_after == certificate_not_after(short.cert)
    install(long, live)
    tls.reload()
    assert tls.not_after == certificate_not_after(long.cert)
    live.cert.write_text("broken\n")
    with pytest.raises(TlsError):
        tls.reload()
    assert tls.not_after == certificate_not_after(long.cert), "a refused reload changed it"


def test_no_sendfile_under_tls_and_the_bytes_are_right(ca: TestCA, tmp_path: Path) -> None:
    # Hot bodies of 8 KiB and more go out with sendfile() on plain sockets, which
    # would bypass the TLS layer: under TLS they must go through the transport.
    pair = ca.issue("server")
    big_zip = tmp_path / "v1.0.0.zip"
    big_zip.write_bytes(b"PK" + os.urandom(200_000))
    want = big_zip.read_bytes()
    tls = TlsCertificate(pair.cert, pair.key)

    async def main() -> None:
        handle = await start_server(FakeGateway(zip_path=big_zip), tls=tls)
        try:
            client, _ = await connect(handle, ca)
            for i in range(8):
                resp = await client.get(ZIP_PATH)
                assert resp.status == 200 and resp.body == want, f"request {i}: {resp}"
            assert handle.state.hits >= 6, "the zip never became a hot hit"
            assert len(handle.state.hot.files) == 0, "a memory file was made under TLS"
            await client.close()
        finally:
            await handle.close(grace=1.0)

    run(main())


def test_large_files_from_the_store_go_through_tls(ca: TestCA, tmp_path: Path) -> None:
    # Bodies too large for the hot set go out with os.sendfile() on plain
    # sockets; under TLS that would put plain bytes into the encrypted stream.
    pair = ca.issue("server")
    big_zip = tmp_path / "v1.0.0.zip"
    big_zip.write_bytes(b"PK" + os.urandom(3_000_000))
    want = big_zip.read_bytes()
    tls = TlsCertificate(pair.cert, pair.key)

    async def main() -> None:
        handle = await start_server(FakeGateway(zip_path=big_zip), tls=tls)
        try:
            clients = [(await connect(handle, ca))[0] for _ in range(3)]
            for round_ in range(2):
                answers = await asyncio.gather(*(c.get(ZIP_PATH) for c in clients))
                for i, resp in enumerate(answers):
                    assert resp.status == 200, f"round {round_} client {i}: {resp}"
                    assert resp.body == want, f"round {round_} client {i}: body differs"
            assert handle.state.hits == 0, "a 3 MB zip was answered from the hot set"
            for client in clients:
                await client.close()
        finally:
            await handle.close(grace=1.0)

    run(main())


def test_a_plain_http_request_to_the_tls_port_gets_no_answer(ca: TestCA) -> None:
    pair = ca.issue("server")
    tls = TlsCertificate(pair.cert, pair.key)

    async def main() -> None:
        handle = await start_server(FakeGateway(), tls=tls)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", handle.port)
            writer.write(f"GET {INFO_PATH} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data = await asyncio.wait_for(reader.read(), IO_TIMEOUT)
            assert b"HTTP/1.1 200" not in data, f"answered in plain text: {data!r}"
            writer.close()
        finally:
            await handle.close(grace=1.0)

    run(main())


def test_a_certificate_close_to_expiry_is_logged(
    ca: TestCA, caplog: pytest.LogCaptureFixture
) -> None:
    soon = ca.issue("soon", valid_for=datetime.timedelta(days=3))
    later = ca.issue("later", valid_for=datetime.timedelta(days=60))
    with caplog.at_level(logging.WARNING, logger="modgate.server"):
        TlsCertificate(later.cert, later.key)
        assert not caplog.records, caplog.text
        TlsCertificate(soon.cert, soon.key)
    (record,) = caplog.records
    assert getattr(record, "event", "") == "certificate_expiry", caplog.text
    assert str(soon.cert) in record.getMessage() and "expires" in record.getMessage()
