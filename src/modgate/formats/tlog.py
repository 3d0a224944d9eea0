"""The transparency log of a checksum database (after x/mod sumdb/tlog).

A log is a Merkle tree over records, hashed as RFC 6962 says: a record's
hash is ``SHA-256(0x00 || record)``, an interior node's is
``SHA-256(0x01 || left || right)``, and a tree of N records splits at the
largest power of two below N. Every complete subtree's hash is *stored* once,
in append order, at a fixed index (:func:`stored_hash_index`), so a log is an
append-only list of hashes and any proof is a handful of reads from it.

Reads go through a ``HashReader``: a function from a list of stored hash
indexes to the hashes, supplied by the caller (from memory, a file, or tiles
fetched over the network). Nothing here does I/O.

The tree head text a database signs::

    go.sum database tree
    <N>
    <base64 root hash>

and a record is sent as ``<id>\\n<record text>\\n`` (the text itself ends in a
newline and has no blank lines, so the blank line ends it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

HASH_SIZE = 32
Hash = bytes
HashReader = Callable[[Sequence[int]], Sequence[Hash]]
"""Returns the stored hashes at the given indexes, in order."""

EMPTY_HASH = hashlib.sha256(b"").digest()
"""The hash of the empty tree."""
TREE_PREFIX = "go.sum database tree\n"
MAX_TREE_TEXT = 1_000_000
MAX_ID_DIGITS = 18
"""Record ids are int64 in the go command; 18 digits always fit."""
MAX_TREE_SIZE = 1 << 63
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class TlogError(ValueError):
    """Malformed log data: a tree head, a record, a tile path, a hash."""


class ProofError(TlogError):
    """A proof or a tile does not match the signed tree: the log is inconsistent."""


def format_hash(h: Hash) -> str:
    return base64.b64encode(h).decode("ascii")


def parse_hash(text: str) -> Hash:
    try:
        h = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise TlogError(f"malformed hash {text!r}") from None
    if len(h) != HASH_SIZE:
        raise TlogError(f"malformed hash {text!r}")
    return h


def record_hash(data: bytes) -> Hash:
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: Hash, right: Hash) -> Hash:
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _maxpow2(n: int) -> tuple[int, int]:
    """``(k, level)``: the largest power of two ``k = 2**level`` below ``n`` (n > 1)."""
    level = 0
    while (1 << (level + 1)) < n:
        level += 1
    return 1 << level, level


# ---- stored hash indexes ------------------------------------------------------------


def stored_hash_index(level: int, n: int) -> int:
    """Where the hash of the ``n``-th subtree of height ``level`` is stored."""
    for _ in range(level):
        n = 2 * n + 1
    i = 0
    while n > 0:
        i += n
        n >>= 1
    return i + level


def split_stored_hash_index(index: int) -> tuple[int, int]:
    """The inverse of :func:`stored_hash_index`: ``(level, n)``."""
    n = index // 2
    index_n = stored_hash_index(0, n)
    while True:
        # each record adds its own hash and one per subtree it completes
        x = index_n + 1 + _trailing_zeros(n + 1)
        if x > index:
            break
        n += 1
        index_n = x
    level = index - index_n
    return level, n >> level


def _trailing_zeros(n: int) -> int:
    return (n & -n).bit_length() - 1


def stored_hash_count(n: int) -> int:
    """How many hashes a log of ``n`` records stores."""
    if n == 0:
        return 0
    count = stored_hash_index(0, n - 1) + 1
    i = n - 1
    while i & 1:
        count += 1
        i >>= 1
    return count


def stored_hashes_for_record_hash(n: int, h: Hash, read: HashReader) -> list[Hash]:
    """The hashes to append when record ``n`` (whose hash is ``h``) joins a log of ``n``."""
    m = _trailing_zeros(n + 1)
    indexes = [stored_hash_index(i, (n >> i) - 1) for i in reversed(range(m))]
    old = _read(read, indexes)
    hashes = [h]
    for i in range(m):
        h = node_hash(old[m - 1 - i], h)
        hashes.append(h)
    return hashes


def _read(read: HashReader, indexes: Sequence[int]) -> Sequence[Hash]:
    if not indexes:
        return []
    hashes = read(indexes)
    if len(hashes) != len(indexes):
        raise TlogError(f"the hash reader returned {len(hashes)} hashes for {len(indexes)}")
    return hashes


# ---- tree hashes and proofs ---------------------------------------------------------


def sub_tree_index(lo: int, hi: int, need: list[int]) -> list[int]:
    """Append the stored indexes of the complete subtrees that make up ``[lo, hi)``."""
    while lo < hi:
        k, level = _maxpow2(hi - lo + 1)
        need.append(stored_hash_index(level, lo >> level))
        lo += k
    return need


def sub_tree_hash(lo: int, hi: int, hashes: Sequence[Hash]) -> tuple[Hash, Sequence[Hash]]:
    """The hash of ``[lo, hi)`` from the hashes :func:`sub_tree_index` named; and the rest."""
    count = 0
    while lo < hi:
        k, _ = _maxpow2(hi - lo + 1)
        count += 1
        lo += k
    h = hashes[count - 1]
    for i in range(count - 2, -1, -1):
        h = node_hash(hashes[i], h)
    return h, hashes[count:]


def tree_hash(n: int, read: HashReader) -> Hash:
    """The root hash of the first ``n`` records."""
    if n == 0:
        return EMPTY_HASH
    indexes = sub_tree_index(0, n, [])
    h, _ = sub_tree_hash(0, n, _read(read, indexes))
    return h


def _leaf_proof_index(lo: int, hi: int, n: int, need: list[int]) -> list[int]:
    if lo + 1 == hi:
        return need
    k, _ = _maxpow2(hi - lo)
    if n < lo + k:
        _leaf_proof_index(lo, lo + k, n, need)
        sub_tree_index(lo + k, hi, need)
    else:
        sub_tree_index(lo, lo + k, need)
        _leaf_proof_index(lo + k, hi, n, need)
    return need


def _leaf_proof(
    lo: int, hi: int, n: int, hashes: Sequence[Hash]
) -> tuple[list[Hash], Sequence[Hash]]:
    if lo + 1 == hi:
        return [], hashes
    k, _ = _maxpow2(hi - lo)
    if n < lo + k:
        proof, hashes = _leaf_proof(lo, lo + k, n, hashes)
        th, hashes = sub_tree_hash(lo + k, hi, hashes)
    else:
        th, hashes = sub_tree_hash(lo, lo + k, hashes)
        proof, hashes = _leaf_proof(lo + k, hi, n, hashes)
    return [*proof, th], hashes


def prove_record(t: int, n: int, read: HashReader) -> list[Hash]:
    """The proof that record ``n`` is in the tree of size ``t``."""
    if t < 0 or n < 0 or n >= t:
        raise TlogError(f"cannot prove record {n} in a tree of size {t}")
    hashes = _read(read, _leaf_proof_index(0, t, n, []))
    proof, _ = _leaf_proof(0, t, n, hashes)
    return proof


def _run_record_proof(proof: Sequence[Hash], lo: int, hi: int, n: int, leaf: Hash) -> Hash:
    if lo + 1 == hi:
        if proof:
            raise ProofError("invalid transparency proof")
        return leaf
    if not proof:
        raise ProofError("invalid transparency proof")
    k, _ = _maxpow2(hi - lo)
    if n < lo + k:
        return node_hash(_run_record_proof(proof[:-1], lo, lo + k, n, leaf), proof[-1])
    return node_hash(proof[-1], _run_record_proof(proof[:-1], lo + k, hi, n, leaf))


def check_record(proof: Sequence[Hash], t: int, th: Hash, n: int, h: Hash) -> None:
    """Raise ProofError unless ``proof`` shows record hash ``h`` at ``n`` in tree (t, th)."""
    if t < 0 or n < 0 or n >= t:
        raise ProofError(f"cannot check record {n} in a tree of size {t}")
    if _run_record_proof(proof, 0, t, n, h) != th:
        raise ProofError("invalid transparency proof")


def _tree_proof_index(lo: int, hi: int, n: int, need: list[int]) -> list[int]:
    if n == hi:
        return need if lo == 0 else sub_tree_index(lo, hi, need)
    k, _ = _maxpow2(hi - lo)
    if n <= lo + k:
        _tree_proof_index(lo, lo + k, n, need)
        sub_tree_index(lo + k, hi, need)
    else:
        sub_tree_index(lo, lo + k, need)
        _tree_proof_index(lo + k, hi, n, need)
    return need


def _tree_proof(
    lo: int, hi: int, n: int, hashes: Sequence[Hash]
) -> tuple[list[Hash], Sequence[Hash]]:
    if n == hi:
        if lo == 0:
            return [], hashes
        th, hashes = sub_tree_hash(lo, hi, hashes)
        return [th], hashes
    k, _ = _maxpow2(hi - lo)
    if n <= lo + k:
        proof, hashes = _tree_proof(lo, lo + k, n, hashes)
        th, hashes = sub_tree_hash(lo + k, hi, hashes)
    else:
        th, hashes = sub_tree_hash(lo, lo + k, hashes)
        proof, hashes = _tree_proof(lo + k, hi, n, hashes)
    return [*proof, th], hashes


def prove_tree(t: int, n: int, read: HashReader) -> list[Hash]:
    """The proof that the tree of size ``n`` is a prefix of the tree of size ``t``."""
    if t < 1 or n < 1 or n > t:
        raise TlogError(f"cannot prove tree {n} in a tree of size {t}")
    hashes = _read(read, _tree_proof_index(0, t, n, []))
    proof, _ = _tree_proof(0, t, n, hashes)
    return proof


def _run_tree_proof(
    proof: Sequence[Hash], lo: int, hi: int, n: int, old: Hash
) -> tuple[Hash, Hash]:
    if n == hi:
        if lo == 0:
            if proof:
                raise ProofError("invalid transparency proof")
            return old, old
        if len(proof) != 1:
            raise ProofError("invalid transparency proof")
        return proof[0], proof[0]
    if not proof:
        raise ProofError("invalid transparency proof")
    k, _ = _maxpow2(hi - lo)
    if n <= lo + k:
        oh, th = _run_tree_proof(proof[:-1], lo, lo + k, n, old)
        return oh, node_hash(th, proof[-1])
    oh, th = _run_tree_proof(proof[:-1], lo + k, hi, n, old)
    return node_hash(proof[-1], oh), node_hash(proof[-1], th)


def check_tree(proof: Sequence[Hash], t: int, th: Hash, n: int, h: Hash) -> None:
    """Raise ProofError unless ``proof`` shows tree (n, h) is a prefix of tree (t, th)."""
    if t < 1 or n < 1 or n > t:
        raise ProofError(f"cannot check tree {n} in a tree of size {t}")
    h2, th2 = _run_tree_proof(proof, 0, t, n, h)
    if h2 != h or th2 != th:
        raise ProofError("invalid transparency proof")


# ---- tree heads and records ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tree:
    """A tree head: the size and root hash of a log."""

    n: int
    hash: Hash


def format_tree(tree: Tree) -> bytes:
    return f"{TREE_PREFIX}{tree.n}\n{format_hash(tree.hash)}\n".encode("ascii")


def parse_tree(text: bytes | str) -> Tree:
    """Read a tree head text (as a note carries it); raises TlogError."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    if not raw.startswith(TREE_PREFIX.encode()) or raw.count(b"\n") < 3 or len(raw) > MAX_TREE_TEXT:
        raise TlogError("malformed tree note")
    lines = raw.split(b"\n", 3)
    size = lines[1]
    if not size.isdigit() or len(size) > MAX_ID_DIGITS + 1 or int(size) >= MAX_TREE_SIZE:
        raise TlogError("malformed tree note")
    if size != str(int(size)).encode():
        raise TlogError("malformed tree note")
    try:
        h = parse_hash(lines[2].decode("ascii"))
    except (TlogError, UnicodeDecodeError):
        raise TlogError("malformed tree note") from None
    return Tree(int(size), h)


def is_valid_record_text(text: bytes) -> bool:
    """UTF-8, no control characters but newline, no blank lines, ending in a newline."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if not decoded.endswith("\n") or "\n\n" in decoded:
        return False
    return not any(c < " " and c != "\n" for c in decoded)


def format_record(record_id: int, text: bytes) -> bytes:
    """``<id>\\n<text>\\n``: a record as a lookup answer starts."""
    if not is_valid_record_text(text):
        raise TlogError("malformed record data")
    return f"{record_id}\n".encode() + text + b"\n"


def parse_record(message: bytes) -> tuple[int, bytes, bytes]:
    """``(id, text, rest)`` from a lookup answer; ``rest`` is the signed tree note."""
    first, newline, after = message.partition(b"\n")
    if not newline or not first.isdigit() or len(first) > MAX_ID_DIGITS:
        raise TlogError("malformed record data")
    record_id = int(first)
    end = after.find(b"\n\n")
    if end < 0:
        raise TlogError("malformed record data")
    text, rest = after[: end + 1], after[end + 2 :]
    if not is_valid_record_text(text):
        raise TlogError("malformed record data")
    return record_id, text, rest
