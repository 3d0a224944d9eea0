"""Signed notes and their keys, as the go command reads them (after x/mod sumdb/note).

A checksum database proves what it says with *signed notes*: a UTF-8 text
that ends in a newline, a blank line, then one line per signature::

    go.sum database tree
    42
    <base64 root hash>

    — sum.golang.org Az3grlgtaB...

Each signature line is an em dash, a space, the key name, a space, and the
base64 of the 4-byte key hash followed by the signature over the text
(including its final newline). The formats are fixed by the go command, so
every rule here is the go command's rule, including the odd ones: a key is
split on its first two ``+`` only (base64 itself may contain ``+``), and the
key hash is the first four bytes of SHA-256 over ``name + "\\n" + key data``.

Keys (algorithm byte 0x01 is Ed25519, the only algorithm there is)::

    verifier key  <name>+<8 hex digits>+<base64(0x01 || 32-byte public key)>
    signer key    PRIVATE+KEY+<name>+<8 hex digits>+<base64(0x01 || 32-byte seed)>

A signer key is a secret: :class:`Signer` never shows it in ``repr`` or
``str``; only :meth:`Signer.signer_key` spells it out, for writing the key file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG_ED25519 = 1
ED25519_KEY_SIZE = 32
KEY_HASH_SIZE = 4
KEY_HASH_HEX_DIGITS = 8
SIGNATURE_PREFIX = "— "
SIGNER_KEY_PREFIX = "PRIVATE+KEY+"
MAX_SIGNATURES = 100
"""A note with more signature lines than this is malformed (the go command's limit)."""
MIN_SIGNATURE_BYTES = 5
"""Four bytes of key hash and at least one byte of signature."""
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
# Go's unicode.IsSpace: the Unicode White_Space property (Python's isspace also
# counts U+001C..U+001F, which Go does not).
_GO_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


class NoteError(ValueError):
    """A malformed note or key, or a note that does not verify."""


class MalformedVerifierError(NoteError):
    """A verifier key that is not NAME+HASH+KEY (the go command: "malformed verifier id")."""


class VerifierHashError(NoteError):
    """A verifier key whose hash does not match its key ("invalid verifier hash")."""


class VerifierAlgorithmError(NoteError):
    """A verifier key of an algorithm other than Ed25519 ("unknown verifier algorithm")."""


class UnverifiedNoteError(NoteError):
    """The note has no signature by any known key."""


class InvalidSignatureError(NoteError):
    """A signature by a known key does not match the text: the note was altered or forged."""


def key_hash(name: str, key_data: bytes) -> int:
    """The 32-bit key hash: the first four bytes, big-endian, of SHA-256(name, newline, key)."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + key_data).digest()
    return int.from_bytes(digest[:KEY_HASH_SIZE], "big")


def is_valid_name(name: str) -> bool:
    """A key name: non-empty UTF-8 without white space and without ``+``."""
    if not name or "+" in name:
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(c in _GO_SPACE for c in name)


def _decode_base64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return None


def _parse_hash(hex8: str) -> int | None:
    if len(hex8) != KEY_HASH_HEX_DIGITS or any(c not in _HEX_DIGITS for c in hex8):
        return None
    return int(hex8, 16)


@dataclass(frozen=True, slots=True)
class Verifier:
    """A public key that checks signatures: ``str()`` is the verifier key text."""

    name: str
    hash: int
    public_key: bytes

    @property
    def key_data(self) -> bytes:
        return bytes([ALG_ED25519]) + self.public_key

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __str__(self) -> str:
        encoded = base64.b64encode(self.key_data).decode("ascii")
        return f"{self.name}+{self.hash:08x}+{encoded}"


def parse_verifier(vkey: str) -> Verifier:
    """Read a verifier key ``<name>+<hash>+<base64 key>``; raises NoteError."""
    name, _, rest = vkey.partition("+")
    hex8, _, encoded = rest.partition("+")
    expected = _parse_hash(hex8)
    data = _decode_base64(encoded)
    if expected is None or data is None or not is_valid_name(name) or not data:
        raise MalformedVerifierError(f"malformed verifier key {vkey!r}: use NAME+HASH+KEY")
    if expected != key_hash(name, data):
        raise VerifierHashError(f"invalid verifier key {vkey!r}: its hash does not match its key")
    if data[0] != ALG_ED25519:
        raise VerifierAlgorithmError(f"verifier key {vkey!r} uses unknown algorithm {data[0]}")
    if len(data) - 1 != ED25519_KEY_SIZE:
        raise MalformedVerifierError(
            f"malformed verifier key {vkey!r}: the Ed25519 key has the wrong size"
        )
    return Verifier(name, expected, data[1:])


def verifier_key(name: str, public_key: bytes) -> str:
    """The verifier key text for an Ed25519 public key."""
    if not is_valid_name(name):
        raise NoteError(f"invalid key name {name!r}: no white space and no '+'")
    if len(public_key) != ED25519_KEY_SIZE:
        raise NoteError(
            f"an Ed25519 public key has {ED25519_KEY_SIZE} bytes, not {len(public_key)}"
        )
    data = bytes([ALG_ED25519]) + public_key
    return str(Verifier(name, key_hash(name, data), public_key))


@dataclass(frozen=True, slots=True)
class Signer:
    """A private key that signs notes. Its seed never appears in ``repr`` or ``str``."""

    name: str
    hash: int
    seed: bytes = field(repr=False)

    def sign(self, message: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)

    def verifier(self) -> Verifier:
        public = Ed25519PrivateKey.from_private_bytes(self.seed).public_key().public_bytes_raw()
        return Verifier(self.name, self.hash, public)

    def signer_key(self) -> str:
        """The secret signer key text, for the key file only."""
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.seed).decode("ascii")
        return f"{SIGNER_KEY_PREFIX}{self.name}+{self.hash:08x}+{encoded}"

    def __str__(self) -> str:
        return f"signer {self.name}+{self.hash:08x}"


def parse_signer(skey: str) -> Signer:
    """Read a signer key ``PRIVATE+KEY+<name>+<hash>+<base64 seed>``; raises NoteError.

    Error messages never repeat the key text: it is a secret.
    """
    first, _, rest = skey.partition("+")
    second, _, rest = rest.partition("+")
    name, _, rest = rest.partition("+")
    hex8, _, encoded = rest.partition("+")
    expected = _parse_hash(hex8)
    data = _decode_base64(encoded)
    if (
        first != "PRIVATE"
        or second != "KEY"
        or expected is None
        or data is None
        or not is_valid_name(name)
        or not data
    ):
        raise NoteError("malformed signer key: use PRIVATE+KEY+NAME+HASH+KEY")
    if data[0] != ALG_ED25519:
        raise NoteError(f"signer key {name} uses unknown algorithm {data[0]}")
    if len(data) - 1 != ED25519_KEY_SIZE:
        raise NoteError(f"malformed signer key {name}: the Ed25519 seed has the wrong size")
    signer = Signer(name, expected, data[1:])
    if key_hash(name, signer.verifier().key_data) != expected:
        raise NoteError(f"invalid signer key {name}: its hash does not match its key")
    return signer


def signer_from_seed(name: str, seed: bytes) -> Signer:
    """The signer for a 32-byte Ed25519 seed."""
    if not is_valid_name(name):
        raise NoteError(f"invalid key name {name!r}: no white space and no '+'")
    if len(seed) != ED25519_KEY_SIZE:
        raise NoteError(f"an Ed25519 seed has {ED25519_KEY_SIZE} bytes, not {len(seed)}")
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    return Signer(name, key_hash(name, bytes([ALG_ED25519]) + public), seed)


def generate_signer(name: str) -> Signer:
    """A new random key pair (the operating system's randomness)."""
    private = Ed25519PrivateKey.generate()
    return signer_from_seed(name, private.private_bytes_raw())


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    hash: int
    base64: str


@dataclass(frozen=True, slots=True)
class Note:
    """An opened note: its text, the verified signatures and the ones by unknown keys."""

    text: str
    sigs: tuple[Signature, ...]
    unverified: tuple[Signature, ...]


def _check_note_bytes(message: bytes) -> str:
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("malformed note: not UTF-8") from None
    if any(c < " " and c != "\n" for c in text):
        raise NoteError("malformed note: control characters")
    return text


def open_note(message: bytes, known: Iterable[Verifier]) -> Note:
    """Check a signed note against ``known`` keys; at least one must have signed it.

    Raises :class:`NoteError` for a malformed note, :class:`InvalidSignatureError`
    when a known key's signature is wrong, :class:`UnverifiedNoteError` when no
    known key signed it.
    """
    _check_note_bytes(message)
    by_key: dict[tuple[str, int], list[Verifier]] = {}
    for v in known:
        by_key.setdefault((v.name, v.hash), []).append(v)
    split = message.rfind(b"\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line before the signatures")
    text, sigs = message[: split + 1], message[split + 2 :]
    if not sigs or not sigs.endswith(b"\n"):
        raise NoteError("malformed note: the signatures do not end in a newline")
    verified: list[Signature] = []
    unverified: list[Signature] = []
    seen: set[tuple[str, int]] = set()
    seen_unverified: set[bytes] = set()
    for count, raw in enumerate(sigs[:-1].split(b"\n"), start=1):
        line = raw.decode("utf-8")
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("malformed note: a signature line does not start with '— '")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        sig = _decode_base64(encoded)
        if sig is None or not is_valid_name(name) or not encoded or len(sig) < MIN_SIGNATURE_BYTES:
            raise NoteError("malformed note: unreadable signature line")
        if count > MAX_SIGNATURES:
            raise NoteError(f"malformed note: more than {MAX_SIGNATURES} signatures")
        khash = int.from_bytes(sig[:KEY_HASH_SIZE], "big")
        candidates = by_key.get((name, khash), [])
        if not candidates:
            if raw not in seen_unverified:
                seen_unverified.add(raw)
                unverified.append(Signature(name, khash, encoded))
            continue
        if len(candidates) > 1:
            raise NoteError(f"ambiguous key {name}+{khash:08x}")
        if (name, khash) in seen:
            continue
        seen.add((name, khash))
        if not candidates[0].verify(text, sig[KEY_HASH_SIZE:]):
            raise InvalidSignatureError(f"invalid signature for key {name}+{khash:08x}")
        verified.append(Signature(name, khash, encoded))
    if not verified:
        raise UnverifiedNoteError("note has no verifiable signatures")
    return Note(text.decode("utf-8"), tuple(verified), tuple(unverified))


def sign_note(text: str, signers: Iterable[Signer]) -> bytes:
    """``text`` (which must end in a newline), a blank line, and one signature per signer."""
    if not text.endswith("\n"):
        raise NoteError("malformed note: the text must end in a newline")
    body = text.encode("utf-8")
    _check_note_bytes(body)
    lines = []
    for signer in signers:
        if not is_valid_name(signer.name):
            raise NoteError(f"invalid signer name {signer.name!r}")
        sig = signer.hash.to_bytes(KEY_HASH_SIZE, "big") + signer.sign(body)
        lines.append(f"{SIGNATURE_PREFIX}{signer.name} {base64.b64encode(sig).decode('ascii')}\n")
    return body + b"\n" + "".join(lines).encode("utf-8")
