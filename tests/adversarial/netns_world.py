"""A private network for the SSRF scenarios, run inside ``unshare --net --mount --map-root-user``.

``python netns_world.py WORKDIR`` expects to be the first process of a new
network and mount namespace (see ``test_adv_ssrf_netns.py``): it has only a
loopback interface, so nothing it does can leave the machine. It then

- puts 10.20.30.40 (an "internal" host), 169.254.169.254 (a "metadata
  service") and 1.2.3.4 (a "public" host) on that loopback interface;
- mounts its own ``/etc/hosts`` over the real one (names for each of them)
  and a ``resolv.conf`` naming no reachable server;
- serves the public host over HTTPS with a test CA (go-get pages, redirects
  to internal names and addresses, a git URL that answers 404) and records
  every request;
- listens on ports 80 and 443 of the internal and metadata addresses and
  records every connection;
- starts ``modgate serve --upstream direct`` (and a second one with
  ``--direct-allow-hosts internal.example`` as a control), sends each
  scenario's request, and prints one JSON document with what came back and
  what the recorders saw.
"""

from __future__ import annotations

import ipaddress
import json
import os
import queue
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: tests/

from helpers.tlscerts import TestCA

PUBLIC = "1.2.3.4"
INTERNAL = "10.20.30.40"
METADATA = "169.254.169.254"
HOSTS = {
    "vanity.example": PUBLIC,
    "redirect.example": PUBLIC,
    "public.example": PUBLIC,
    "internal.example": INTERNAL,
    "metadata.example": METADATA,
}
SCENARIOS = {
    "name resolving to an internal address": "/internal.example/x/@v/list",
    "name resolving to the metadata address": "/metadata.example/latest/@v/list",
    "go-import naming an internal host": "/vanity.example/tool/@v/list",
    "go-import naming the metadata address": "/vanity.example/meta/@v/v1.0.0.info",
    "redirect to an internal name": "/redirect.example/hop/@v/list",
    "redirect to an internal address": "/redirect.example/lit/@v/list",
    "name without an address": "/unknown.example/x/@v/list",
    "public repository (control)": "/public.example/ok/@v/list",
}
CONTROL = "/internal.example/x/@v/list"
START_TIMEOUT = 30.0
REQUEST_TIMEOUT = 30.0


def meta(content: str) -> bytes:
    return f'<html><head><meta name="go-import" content="{content}"></head></html>'.encode()


PAGES: dict[tuple[str, str], tuple[int, bytes, str]] = {
    ("vanity.example", "/tool"): (
        200,
        meta("vanity.example/tool git https://internal.example/tool.git"),
        "",
    ),
    ("vanity.example", "/meta"): (
        200,
        meta(f"vanity.example/meta git https://{METADATA}/repo.git"),
        "",
    ),
    ("redirect.example", "/hop"): (302, b"", "https://metadata.example/latest/?go-get=1"),
    ("redirect.example", "/lit"): (302, b"", f"https://{INTERNAL}/x?go-get=1"),
    ("public.example", "/ok"): (
        200,
        meta("public.example/ok git https://public.example/ok.git"),
        "",
    ),
}


def run(*argv: str) -> None:
    subprocess.run(argv, check=True)


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA (``ca.pem``) and a server certificate for every public name."""
    ca = TestCA(folder, "netns test CA")
    names = [x509.DNSName(n) for n, a in HOSTS.items() if a == PUBLIC]
    pair = ca.issue("public.example", names=[*names, x509.IPAddress(ipaddress.ip_address(PUBLIC))])
    return ca.pem, pair.cert, pair.key


class PublicServer(ThreadingHTTPServer):
    daemon_threads = True
    requests_seen: list[str]


class PublicHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: PublicServer

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        host = (self.headers.get("Host") or "").split(":")[0]
        path = self.path.split("?")[0]
        self.server.requests_seen.append(f"{host}{self.path}")
        status, body, location = PAGES.get((host, path), (404, b"not found\n", ""))
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def record_connections(address: str, port: int, seen: list[str]) -> None:
    server = socket.create_server((address, port))

    def loop() -> None:
        while True:
            conn, _ = server.accept()
            seen.append(f"{address}:{port}")
            conn.close()

    threading.Thread(target=loop, daemon=True).start()


def start_modgate(
    work: Path, name: str, ca: Path, *extra: str
) -> tuple[subprocess.Popen[bytes], str]:
    home = work / f"home-{name}"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_SSL_CAINFO": str(ca),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }
    argv = [
        sys.executable, "-m", "modgate", "serve", "--listen", "127.0.0.1:0",
        "--store", str(work / f"store-{name}"), "--upstream", "direct", "--ca-bundle", str(ca),
        "--verify-sumdb", "off", "--access-log", "off", "--git-timeout", "20", *extra,
    ]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines: queue.Queue[str] = queue.Queue()
    log: list[str] = []

    def drain() -> None:
        assert proc.stderr is not None
        for raw in iter(proc.stderr.readline, b""):
            line = raw.decode(errors="replace")
            log.append(line)
            lines.put(line)

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "listening":
            return proc, str(event["url"])
    proc.kill()
    raise SystemExit(f"modgate did not start: {''.join(log)}")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=REQUEST_TIMEOUT) as answer:
            return answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def main() -> None:
    work = Path(sys.argv[1])
    run("ip", "link", "set", "lo", "up")
    for address in (INTERNAL, METADATA, PUBLIC):
        run("ip", "addr", "add", f"{address}/32", "dev", "lo")
    hosts = work / "hosts"
    hosts.write_text("127.0.0.1 localhost\n" + "".join(f"{a} {n}\n" for n, a in HOSTS.items()))
    resolv = work / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    run("mount", "--bind", str(hosts), "/etc/hosts")
    run("mount", "--bind", str(resolv), "/etc/resolv.conf")

    ca, cert, key = make_certificates(work)
    public = PublicServer((PUBLIC, 443), PublicHandler)
    public.requests_seen = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    public.socket = context.wrap_socket(public.socket, server_side=True)
    threading.Thread(target=public.serve_forever, daemon=True).start()
    internal_seen: list[str] = []
    for address in (INTERNAL, METADATA):
        for port in (80, 443):
            record_connections(address, port, internal_seen)

    results: dict[str, object] = {}
    guarded, url = start_modgate(work, "guarded", ca)
    try:
        answers = {}
        for name, target in SCENARIOS.items():
            status, body = get(url + target)
            answers[name] = {"target": target, "status": status, "body": body}
        results["answers"] = answers
        results["internal_connections"] = list(internal_seen)
        results["public_requests"] = list(public.requests_seen)
    finally:
        guarded.kill()
        guarded.wait()
    allowed, url = start_modgate(work, "allowed", ca, "--direct-allow-hosts", "internal.example")
    try:
        status, body = get(url + CONTROL)
        results["control"] = {"status": status, "body": body}
        time.sleep(0.2)
        results["control_connections"] = [c for c in internal_seen if c.startswith(INTERNAL)]
    finally:
        allowed.kill()
        allowed.wait()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
