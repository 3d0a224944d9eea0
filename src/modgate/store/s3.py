"""The S3 store: the store port on an S3-compatible object store (AWS S3, GCS, Ceph, MinIO...).

Selected with ``--store s3://BUCKET[/PREFIX]``. Keys are the filesystem
store's paths under ``PREFIX/``, so a bucket holds the go command's
``cache/download`` layout and can be served by any static file server or
synced to a disk and served by the filesystem store:

    PREFIX/<escaped module>/@v/<escaped version>.{info,mod,zip,ziphash}
    PREFIX/<escaped module>/@v/list
    PREFIX/_modgate/meta/<name>/@meta

Immutable artifacts are created with a conditional write (``If-None-Match:
*``): the first writer wins, a later one gets 412 and keeps what is there, so
nothing stored is ever overwritten and no reader sees a partial object (an
object appears whole or not at all). list and meta records are replaced;
their write time travels in the object's metadata (``x-amz-meta-written``)
so that TTLs do not depend on the object store's clock.

Temp files are local, under ``local_dir/tmp``. Locks come from a
:class:`~modgate.store.locking.Locks`: per process unless a shared one
(Redis) is given. Endpoint, region and credentials come from the standard
AWS configuration, read by boto3 (``AWS_ENDPOINT_URL``, ``AWS_REGION``,
keys, ``AWS_PROFILE``, web identity...).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modgate.protocol.errors import ModgateError, StoreError
from modgate.protocol.escape import unescape_path, unescape_version
from modgate.protocol.module import ModuleVersion
from modgate.store.base import Kind, Stamped
from modgate.store.filesystem import (
    LIST_FILE,
    META_DIR,
    META_FILE,
    MOD_SUFFIX,
    STATE_DIR,
    VERSIONS_DIR,
    artifact_relpath,
    list_relpath,
    meta_elements,
)
from modgate.store.locking import Locks, ProcessLocks

if TYPE_CHECKING:
    from modgate.store.base import Store

SCHEME = "s3://"
TEMP_DIR = "tmp"
WRITTEN_META = "written"
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
_EXISTS = frozenset({"412", "PreconditionFailed"})
_CONFLICT = frozenset({"409", "ConditionalRequestConflict", "OperationAborted"})
_UNREACHABLE = frozenset(
    {"EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError", "ReadTimeoutError"}
)
UNREACHABLE_BACKOFF = 2.0
"""Seconds after the object store did not answer during which calls fail at once: reads of
artifacts not in the disk cache run on the serving thread, which must not wait on every one."""


def parse_url(url: str) -> tuple[str, str]:
    """``s3://BUCKET[/PREFIX]`` as ``(bucket, prefix)``, prefix without slashes at its ends."""
    if not url.startswith(SCHEME):
        raise ValueError("an s3 store is named s3://BUCKET[/PREFIX]")
    bucket, _, prefix = url[len(SCHEME) :].partition("/")
    prefix = prefix.strip("/")
    if not bucket or not all(c.isalnum() or c in ".-_" for c in bucket):
        raise ValueError(f"{bucket!r} is not a bucket name (letters, digits, '.', '-', '_')")
    for element in prefix.split("/") if prefix else ():
        if element in ("", ".", "..") or "\x00" in element:
            raise ValueError(f"prefix {prefix!r} has an empty, '.' or '..' element")
    return bucket, prefix


def make_client() -> Any:
    """A boto3 S3 client configured from the standard AWS configuration."""
    # boto3 takes 0.2 s to import: only a process that opens an s3:// store pays it
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    # boto3 logs where it found credentials and endpoints at info level: noise in modgate's log
    for name in ("boto3", "botocore", "s3transfer", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    config = Config(
        connect_timeout=2,
        read_timeout=60,
        retries={"max_attempts": 3, "mode": "standard"},
        max_pool_connections=64,
        signature_version="s3v4",  # presigned URLs too (boto3 signs them SigV2 otherwise)
    )
    return boto3.session.Session().client("s3", config=config)


def meta_relpath(name: str) -> str:
    """``_modgate/meta/<name>/@meta``; raises StoreError for a name that escapes."""
    return "/".join((STATE_DIR, META_DIR, *meta_elements(name), META_FILE))


class S3Store:
    """The Store port on one bucket (and prefix) of an S3-compatible object store."""

    reads_block = True
    """Every read is a round trip to the object store: callers on an event loop use a thread."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        local_dir: Path,
        *,
        client: Any = None,
        locks: Locks | None = None,
    ) -> None:
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.url = f"{SCHEME}{bucket}/{self.prefix}" if self.prefix else f"{SCHEME}{bucket}"
        self.client = _Guarded(client if client is not None else make_client())
        self.locks: Locks = locks if locks is not None else ProcessLocks()
        try:
            Path(local_dir).mkdir(parents=True, exist_ok=True)
            self.root = Path(local_dir).resolve(strict=True)
            self._tmp = self.root / TEMP_DIR
            self._tmp.mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreError(
                str(local_dir),
                f"cannot create the S3 store's local folder: {exc.strerror}; check its permissions",
            ) from exc

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    # -- artifacts --------------------------------------------------------

    def get(self, mv: ModuleVersion, kind: Kind) -> bytes | None:
        found = self._read(artifact_relpath(mv, kind), str(mv))
        return None if found is None else found.data

    def local_path(self, mv: ModuleVersion, kind: Kind) -> Path | None:
        artifact_relpath(mv, kind)  # refuses a hostile name like every other call
        return None  # objects are not files: diskcache.CachedStore gives paths

    def size(self, mv: ModuleVersion, kind: Kind) -> int | None:
        key, subject = self._key(artifact_relpath(mv, kind)), str(mv)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _code(exc) in _MISSING:
                return None
            raise self._failure(subject, "inspect", key, exc) from exc
        return int(head["ContentLength"])

    def presign(self, mv: ModuleVersion, kind: Kind, expiry: int) -> str:
        """A GET URL of the stored artifact, valid for ``expiry`` seconds (signed locally)."""
        key, subject = self._key(artifact_relpath(mv, kind)), str(mv)
        try:
            url = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expiry
            )
        except Exception as exc:
            raise self._failure(subject, "sign a URL of", key, exc) from exc
        return str(url)

    def download(self, mv: ModuleVersion, kind: Kind, dest: Path) -> bool:
        """Stream the artifact into ``dest``; False when it is absent."""
        key, subject = self._key(artifact_relpath(mv, kind)), str(mv)
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _code(exc) in _MISSING:
                return False
            raise self._failure(subject, "read", key, exc) from exc
        body = answer["Body"]
        try:
            with dest.open("wb") as out:
                for chunk in body.iter_chunks(1 << 20):
                    out.write(chunk)
        except Exception as exc:
            raise self._failure(subject, "read", key, exc) from exc
        finally:
            body.close()
        return True

    def put(self, mv: ModuleVersion, kind: Kind, data: bytes) -> None:
        self._create(artifact_relpath(mv, kind), str(mv), lambda: data)

    def put_file(self, mv: ModuleVersion, kind: Kind, src: Path) -> None:
        rel, subject = artifact_relpath(mv, kind), str(mv)
        ours = Path(os.path.realpath(src.parent)) == self._tmp
        try:
            with src.open("rb") as body:
                self._create(rel, subject, lambda: body)
        except OSError as exc:
            raise StoreError(
                subject, f"cannot read a fetched artifact's temp file: {exc.strerror}"
            ) from exc
        finally:
            if ours:
                with suppress(OSError):
                    src.unlink(missing_ok=True)

    @contextmanager
    def temp_file(self) -> Iterator[Path]:
        path = self._tmp / f"{secrets.token_hex(12)}.tmp"
        try:
            path.touch(exist_ok=False)
        except OSError as exc:
            raise StoreError(
                str(path), f"cannot create a temp file for the S3 store: {exc.strerror}"
            ) from exc
        try:
            yield path
        finally:
            with suppress(OSError):
                path.unlink(missing_ok=True)

    def versions(self, module: str) -> list[str]:
        directory = list_relpath(module).removesuffix(LIST_FILE)
        found: list[str] = []
        for key in self._keys(directory, module, delimiter=True):
            name = key.rsplit("/", 1)[-1]
            if name.endswith(MOD_SUFFIX):
                with suppress(ModgateError):
                    found.append(unescape_version(name.removesuffix(MOD_SUFFIX)))
        return found

    def modules(self) -> Iterator[str]:
        seen: set[str] = set()
        for key in self._keys("", self.url, delimiter=False):
            if key.startswith(f"{STATE_DIR}/") or not key.endswith(MOD_SUFFIX):
                continue
            escaped, sep, name = key.rpartition(f"/{VERSIONS_DIR}/")
            if not sep or "/" in name or escaped in seen:
                continue
            seen.add(escaped)
            with suppress(ModgateError):
                yield unescape_path(escaped)

    # -- list and meta ------------------------------------------------------

    def get_list(self, module: str) -> Stamped | None:
        return self._read(list_relpath(module), module)

    def put_list(self, module: str, data: bytes) -> None:
        self._replace(list_relpath(module), module, data)

    def get_meta(self, name: str) -> Stamped | None:
        return self._read(meta_relpath(name), name)

    def put_meta(self, name: str, data: bytes) -> None:
        rel = meta_relpath(name)
        self.locks.check_fence(name)  # the private log's records: only while its lease holds
        self._replace(rel, name, data)

    def check(self) -> str | None:
        """Ask for the bucket: None when it answers, why not when it cannot be reached.

        Raises StoreError when the object store answers no (no such bucket,
        credentials refused): a configuration to fix, not an outage to wait out.
        """
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            failure = self._failure(self.url, "open", "", exc)
            code = _code(exc)
            if code in ("404", "NoSuchBucket"):
                reason = f"the object store has no bucket {self.bucket!r}: create it or fix --store"
                raise StoreError(self.url, reason) from exc
            if code and code not in ("Unreachable",) and not code.startswith("5"):
                raise failure from exc
            return failure.reason
        return None

    # -- locks ------------------------------------------------------------

    def lock(self, name: str) -> AbstractContextManager[None]:
        return self.locks.lock(name)

    def try_lock(self, name: str) -> Callable[[], None] | None:
        return self.locks.try_lock(name)

    def health(self) -> str | None:
        """What is degraded (Redis unreachable), asked now; None when nothing is."""
        return self.locks.health()

    # -- object operations --------------------------------------------------

    def _read(self, rel: str, subject: str) -> Stamped | None:
        key = self._key(rel)
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
            data = answer["Body"].read()
        except Exception as exc:
            if _code(exc) in _MISSING:
                return None
            raise self._failure(subject, "read", key, exc) from exc
        written = answer.get("Metadata", {}).get(WRITTEN_META)
        try:
            stamp = float(written) if written is not None else None
        except ValueError:
            stamp = None
        if stamp is None:
            stamp = answer["LastModified"].timestamp()
        return Stamped(data, stamp)

    def _create(self, rel: str, subject: str, body: Callable[[], Any]) -> None:
        """Create ``rel`` unless it exists (first writer wins, nothing is overwritten)."""
        key = self._key(rel)
        for _ in range(3):
            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body(),
                    IfNoneMatch="*",
                    Metadata={WRITTEN_META: repr(time.time())},
                )
                return
            except Exception as exc:
                code = _code(exc)
                if code in _EXISTS:
                    return  # immutable: the first bytes stored stay
                if code not in _CONFLICT:
                    raise self._failure(subject, "store", key, exc) from exc
            # a concurrent conditional write is under way: it wins unless it fails
            time.sleep(0.1)
            if self._exists(key, subject):
                return
            stream = body()
            if hasattr(stream, "seek"):
                stream.seek(0)
        raise StoreError(subject, f"cannot store {self._where(key)}: concurrent writes conflict")

    def _exists(self, key: str, subject: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _code(exc) in _MISSING:
                return False
            raise self._failure(subject, "inspect", key, exc) from exc
        return True

    def _replace(self, rel: str, subject: str, data: bytes) -> None:
        key = self._key(rel)
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, Metadata={WRITTEN_META: repr(time.time())}
            )
        except Exception as exc:
            raise self._failure(subject, "store", key, exc) from exc

    def _keys(self, rel_dir: str, subject: str, *, delimiter: bool) -> Iterator[str]:
        """Keys under ``rel_dir`` (relative to the prefix), one level or all of them."""
        start = self._key(rel_dir) if rel_dir else (f"{self.prefix}/" if self.prefix else "")
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": start}
        if delimiter:
            args["Delimiter"] = "/"
        strip = len(f"{self.prefix}/") if self.prefix else 0
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(**args):
                for item in page.get("Contents", ()):
                    yield item["Key"][strip:]
        except Exception as exc:
            if isinstance(exc, ModgateError):
                raise
            raise self._failure(subject, "list", start, exc) from exc

    def _where(self, key: str) -> str:
        return f"{SCHEME}{self.bucket}/{key}"

    def _failure(self, subject: str, action: str, key: str, exc: Exception) -> StoreError:
        code = _code(exc)
        detail = f"{code} {_message(exc)}".strip() if code else type(exc).__name__
        return StoreError(
            subject,
            f"cannot {action} {self._where(key)}: {detail}; check the object store's endpoint, "
            "credentials and the bucket's permissions",
        )


class Unreachable(Exception):
    """The object store did not answer a moment ago: failed at once, without a request."""

    def __init__(self, ago: float) -> None:
        super().__init__("object store unreachable")
        message = f"the object store did not answer {ago:.1f} s ago; retry in a moment"
        self.response = {"Error": {"Code": "Unreachable", "Message": message}}


class _Guarded:
    """The S3 client, failing at once for UNREACHABLE_BACKOFF seconds after it could not connect."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._failed_at = -UNREACHABLE_BACKOFF

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name == "get_paginator":
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            ago = time.monotonic() - self._failed_at
            if ago < UNREACHABLE_BACKOFF:
                raise Unreachable(ago)
            try:
                return attr(*args, **kwargs)
            except Exception as exc:
                if type(exc).__name__ in _UNREACHABLE:
                    self._failed_at = time.monotonic()
                raise

        return call


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status:
            return str(status)
    return ""


def _message(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Message", ""))[:200]
    return ""


if TYPE_CHECKING:

    def _conforms(store: S3Store) -> Store:
        return store
