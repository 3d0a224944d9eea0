"""A test certificate authority and server certificates for 127.0.0.1, made with ``cryptography``.

``TestCA(folder)`` writes ``ca.pem``; ``ca.issue(name)`` writes ``<name>.crt``
and ``<name>.key`` (mode 0600) valid for 127.0.0.1, ::1 and localhost, with
``name`` as the common name so a test can tell which certificate a server
presented. A client trusts the CA with ``SSL_CERT_FILE=<ca.pem>`` (the go
command) or ``ca.client_context()`` (Python).
"""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALIDITY = datetime.timedelta(days=30)
LOOPBACK_NAMES: tuple[x509.GeneralName, ...] = (
    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    x509.IPAddress(ipaddress.ip_address("::1")),
    x509.DNSName("localhost"),
)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path
    common_name: str


class TestCA:
    __test__ = False  # not a pytest test class

    def __init__(self, folder: Path, name: str = "modgate test CA") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.pem = folder / "ca.pem"
        self.pem.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        common_name: str,
        folder: Path | None = None,
        valid_for: datetime.timedelta = VALIDITY,
        names: Sequence[x509.GeneralName] = LOOPBACK_NAMES,
    ) -> CertPair:
        """A server certificate for ``names`` (the loopback names), signed by this CA."""
        folder = folder or self.folder
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + valid_for)
            .add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        cert_path = folder / f"{common_name}.crt"
        key_path = folder / f"{common_name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.touch(mode=0o600)
        key_path.chmod(0o600)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return CertPair(cert_path, key_path, common_name)

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this CA and checks the host name."""
        context = ssl.create_default_context(cafile=str(self.pem))
        context.set_alpn_protocols(["http/1.1"])
        return context


def peer_common_name(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> str:
    """The common name of the certificate the server presented."""
    cert = ssl_object.getpeercert()
    assert cert, "the server presented no certificate"
    for rdn in cert["subject"]:
        for attribute in rdn:
            if attribute[0] == "commonName":
                return str(attribute[1])
    raise AssertionError(f"no common name in {cert['subject']}")


def https_get(
    port: int, path: str, context: ssl.SSLContext, *, timeout: float = 10.0
) -> tuple[int, bytes, str]:
    """GET ``path`` over a new HTTPS connection to 127.0.0.1: (status, body, server's CN)."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=timeout)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        body = answer.read()
        assert conn.sock is not None
        return answer.status, body, peer_common_name(conn.sock)
    finally:
        conn.close()
