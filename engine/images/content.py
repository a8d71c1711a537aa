"""Content-addressed blob store, laid out as an OCI image layout.

``root/content`` holds ``oci-layout``, ``blobs/sha256/<hex>`` and ``ingest/``
(temporary files being written). A blob appears under ``blobs/`` only by an
atomic rename after its bytes were hashed, checked against what the caller
expected and fsynced, so a killed writer leaves at most a temp file in
``ingest/``, never a half blob.

Several processes share a store (the CLI, several Celery workers). Two locks
keep them apart, both ``fcntl.flock``:

* ``gc.lock``: writers (``put``, ``ingest``) and whole pulls (``lease()``)
  hold it shared; removal (``gc_lock()``, used by rmi and prune) holds it
  exclusive, so nothing is deleted while something that may still need it is
  being written. A pull should wrap "fetch blobs ... register image" in
  ``with content.lease():`` so a prune cannot remove a fetched blob before the
  image that uses it is registered. Locks nest within a thread.
* each ingest temp file is flocked by its writer, so ``clean_ingest()`` can
  tell a live write from one left by a killed process.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from engine.base.files import fsync_dir, lock, write_atomic
from engine.config import EngineConfig
from engine.errors import EngineError, InvalidArgument, NotFound
from engine.images.reference import check_digest

OCI_LAYOUT = {"imageLayoutVersion": "1.0.0"}
_CHUNK = 1 << 20


class DigestMismatch(InvalidArgument):
    """Content did not hash to the digest (or size) it was announced with; nothing was stored."""


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class BlobWriter:
    """Streams one blob into ``ingest/``; ``commit()`` verifies and moves it into place.

    Use as a context manager: leaving the block without ``commit()`` (or with an
    exception) deletes the temp file.
    """

    def __init__(self, store: ContentStore, expected_digest: str | None, expected_size: int | None):
        if expected_digest is not None:
            check_digest(expected_digest)
        if expected_size is not None and expected_size < 0:
            raise InvalidArgument(f"invalid blob size {expected_size}")
        self.store = store
        self.expected_digest = expected_digest
        self.expected_size = expected_size
        self.bytes_written = 0
        self.existed = False  # set by commit(): the blob was already in the store
        self._hash = hashlib.sha256()
        self._done = False
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(store.lease())
        try:
            fd, tmp = tempfile.mkstemp(dir=store.ingest_dir, prefix="blob-", suffix=".part")
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._file = os.fdopen(fd, "wb")
            self._tmp = Path(tmp)
        except BaseException:
            self._stack.close()
            raise

    @property
    def digest_so_far(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def write(self, data: bytes) -> int:
        if self._done:
            raise EngineError("internal error: write to a blob writer that is closed")
        if self.expected_size is not None and self.bytes_written + len(data) > self.expected_size:
            self.abort()
            name = self.expected_digest or "blob"
            raise DigestMismatch(
                f"{name} is larger than its announced size of {self.expected_size} bytes; nothing was stored"
            )
        self._hash.update(data)
        self._file.write(data)
        self.bytes_written += len(data)
        return len(data)

    def commit(self) -> str:
        if self._done:
            raise EngineError("internal error: blob writer already closed")
        try:
            expected = self.expected_digest
            if self.bytes_written == 0 and expected and self.store.has(expected):
                self.existed = True
                return expected  # already present: the caller had nothing to send
            digest = self.digest_so_far
            if self.expected_size is not None and self.bytes_written != self.expected_size:
                raise DigestMismatch(
                    f"blob {expected or digest} should be {self.expected_size} bytes but "
                    f"{self.bytes_written} were received; nothing was stored"
                )
            if expected is not None and digest != expected:
                raise DigestMismatch(
                    f"digest mismatch: expected {expected} but the content hashes to {digest}; "
                    "nothing was stored"
                )
            target = self.store.path(digest)
            if target.exists():
                self.existed = True
                return digest
            self._file.flush()
            os.fsync(self._file.fileno())
            os.chmod(self._tmp, 0o644)
            os.rename(self._tmp, target)
            fsync_dir(target.parent)
            return digest
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop the temp file (no-op after commit)."""
        if self._done:
            return
        self._done = True
        try:
            with contextlib.suppress(OSError):  # a full disk refuses the buffered rest: no matter
                self._file.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
        finally:
            self._stack.close()

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.abort()


class ContentStore:
    def __init__(self, config: EngineConfig):
        self.config = config
        self.root = config.subdir("content")
        self.blob_dir = self.root / "blobs" / "sha256"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.ingest_dir = self.root / "ingest"
        self.ingest_dir.mkdir(exist_ok=True)
        self._lock_path = self.root / "gc.lock"
        layout = self.root / "oci-layout"
        if not layout.exists():
            write_atomic(layout, json.dumps(OCI_LAYOUT).encode(), fsync=True, mode=0o600)

    # --- reading -------------------------------------------------------------

    def path(self, digest: str) -> Path:
        check_digest(digest)
        return self.blob_dir / digest.removeprefix("sha256:")

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found in the content store") from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found in the content store") from None

    def read(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def digests(self) -> Iterator[str]:
        for entry in os.scandir(self.blob_dir):
            name = entry.name
            if len(name) == 64 and entry.is_file():
                yield "sha256:" + name

    def verify(self, digest: str) -> bool:
        """Re-hash a stored blob: True if its bytes still match its name."""
        h = hashlib.sha256()
        with self.open(digest) as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        return "sha256:" + h.hexdigest() == digest

    # --- writing -------------------------------------------------------------

    def ingest(self, expected_digest: str | None = None, expected_size: int | None = None) -> BlobWriter:
        return BlobWriter(self, expected_digest, expected_size)

    def put(self, data: bytes, expected_digest: str | None = None) -> str:
        digest = sha256_digest(data)
        if expected_digest is not None:
            check_digest(expected_digest)
            if digest != expected_digest:
                raise DigestMismatch(
                    f"digest mismatch: expected {expected_digest} but the content hashes to {digest}; "
                    "nothing was stored"
                )
        with self.lease():
            if self.has(digest):
                return digest
            with self.ingest(digest, len(data)) as writer:
                writer.write(data)
                return writer.commit()

    def put_stream(self, stream: BinaryIO, expected_digest: str | None = None,
                   expected_size: int | None = None) -> str:
        """Copy a file object into the store, verifying as ``ingest`` does."""
        with self.ingest(expected_digest, expected_size) as writer:
            while chunk := stream.read(_CHUNK):
                writer.write(chunk)
            return writer.commit()

    # --- removing and locking --------------------------------------------------

    def lease(self):
        """Shared lock: blobs cannot be garbage-collected while it is held."""
        return lock(self._lock_path, exclusive=False)

    def gc_lock(self):
        """Exclusive lock for removal: waits for every writer and lease to finish."""
        return lock(self._lock_path, exclusive=True)

    def delete(self, digest: str) -> None:
        with self.gc_lock():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(digest))

    def clean_ingest(self) -> int:
        """Remove temp files left by killed writers; returns the bytes freed."""
        with self.gc_lock():
            return self._clean_ingest()

    def _clean_ingest(self) -> int:
        freed = 0
        for entry in os.scandir(self.ingest_dir):
            try:
                fd = os.open(entry.path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live writer holds it
                size = os.fstat(fd).st_size
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    freed += size
            finally:
                os.close(fd)
        return freed
