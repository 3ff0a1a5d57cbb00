"""The recording manifest: a hash chain of JSON lines, signed with the server's Ed25519 key.

How this works: every fact the recorder wants to stand behind later (the recording header, each
track, each closed segment, each pause gap, each drop, the end) is one JSON object written as one
canonical line of ``manifest.jsonl`` and fsync'd. Each entry carries ``seq`` (its line number) and
``prev``, the hex SHA-256 of the previous line's bytes (``"0" * 64`` for the first), so editing,
removing or reordering any line breaks the chain. After each append that matters, ``manifest.sig``
is rewritten atomically (temp file, fsync, rename, fsync of the folder): it signs the SHA-256 of the
manifest bytes written so far together with the head hash, so a crash leaves a verifiable prefix.
The public key sits next to it as ``public_key.pem``; verification against a key the archive trusts
is done by :mod:`recorder.verify`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
SIGNATURE_NAME = "manifest.sig"
PUBLIC_KEY_NAME = "public_key.pem"
GENESIS = "0" * 64
SIGNATURE_FORMAT = "tingshen-manifest-signature/1"
# Domain separation: a signature over a manifest can never be mistaken for one over anything else.
_SIGNATURE_CONTEXT = b"tingshen-manifest-v1\n"


class ManifestError(Exception):
    """The manifest on disk cannot be continued (broken chain, unreadable line)."""


# ---------------------------------------------------------------------------------------------
# Small, dependency-free building blocks shared by the writer, the verifier and recovery.


def canonical_json(obj: Any) -> bytes:
    """Serialise ``obj`` the one way the chain hashes it: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def iso_utc(t: float) -> str:
    """Wall-clock seconds as ISO 8601 UTC with milliseconds: ``2025-03-01T08:00:00.123Z``."""
    stamp = dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def parse_iso_utc(text: str) -> float:
    """Inverse of :func:`iso_utc` (accepts any ISO 8601 string with a zone)."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def fsync_dir(path: Path) -> None:
    """fsync a directory so a create or rename inside it survives a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def file_sha256(path: Path) -> tuple[str, int]:
    """Return (hex SHA-256, size in bytes) of a file, read in chunks."""
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256")
        size = f.tell()
    return digest.hexdigest(), size


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """Load an Ed25519 public key given as PEM or as the raw 32 bytes."""
    if len(data) == 32:
        return Ed25519PublicKey.from_public_bytes(data)
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def key_fingerprint(key: Ed25519PublicKey) -> str:
    """Hex SHA-256 of the raw public key bytes: how a key is named in signatures and faults."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sha256_hex(raw)


def signed_message(fields: dict[str, Any]) -> bytes:
    """The exact bytes an Ed25519 manifest signature covers."""
    return _SIGNATURE_CONTEXT + canonical_json(fields)


def verify_signature(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """True when ``signature`` is ``key``'s signature over ``message``."""
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


# ---------------------------------------------------------------------------------------------


class ManifestSigner:
    """The server's Ed25519 signing key.

    Use :meth:`load_or_create` with a path in the data folder: the key is created on first start
    (PKCS#8 PEM, file mode 0600) and loaded afterwards.
    """

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._public = private_key.public_key()

    @classmethod
    def generate(cls) -> ManifestSigner:
        """A fresh in-memory key (tests, or a caller that stores the key itself)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, key_path: Path) -> ManifestSigner:
        """Load the private key at ``key_path``, creating it (mode 0600) if it does not exist."""
        key_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cls._load(key_path)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(key_path.parent)
        signer = cls(key)
        logger.info("created manifest signing key %s (%s)", key_path, signer.fingerprint())
        return signer

    @classmethod
    def _load(cls, key_path: Path) -> ManifestSigner:
        mode = stat.S_IMODE(os.stat(key_path).st_mode)
        if mode & 0o077:
            logger.warning("signing key %s is readable by others (mode %o)", key_path, mode)
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{key_path} is not an Ed25519 private key")
        return cls(key)

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The matching public key."""
        return self._public

    def public_key_pem(self) -> bytes:
        """The public key as SubjectPublicKeyInfo PEM (what ``public_key.pem`` holds)."""
        return self._public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def fingerprint(self) -> str:
        """Hex SHA-256 of the raw public key."""
        return key_fingerprint(self._public)

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature (64 bytes) over ``data``."""
        return self._key.sign(data)


class ManifestWriter:
    """Appends entries to ``manifest.jsonl`` as a hash chain and keeps ``manifest.sig`` current.

    Owned by one thread (the recording worker, or recovery). Keeps a running SHA-256 of the file so
    re-signing costs O(1) however long the hearing gets.
    """

    def __init__(self, folder: Path, signer: ManifestSigner) -> None:
        self.folder = folder
        self.path = folder / MANIFEST_NAME
        self._signer = signer
        self._digest = hashlib.sha256()
        self._size = 0
        self._count = 0
        self._signed_count = -1
        self._head = GENESIS
        self._recording_id = ""
        self._file: Any = None

    @classmethod
    def create(cls, folder: Path, signer: ManifestSigner, header: dict[str, Any]) -> ManifestWriter:
        """Start a new manifest whose first entry is ``header`` (refuses to overwrite one)."""
        writer = cls(folder, signer)
        writer._file = open(writer.path, "xb")  # closed in close()
        fsync_dir(folder)
        atomic_write(folder / PUBLIC_KEY_NAME, signer.public_key_pem())
        writer._recording_id = str(header.get("recording_id", ""))
        writer.append(header)
        writer.sign()
        return writer

    @classmethod
    def open_existing(cls, folder: Path, signer: ManifestSigner) -> tuple[ManifestWriter, int]:
        """Reopen a manifest to continue it (crash recovery).

        Checks the chain of what is there; drops a partial last line (a crash mid-write) by
        truncating the file. Returns the writer and the number of bytes dropped.
        Raises :class:`ManifestError` when the chain is broken: never sign over tampering.
        """
        writer = cls(folder, signer)
        data = writer.path.read_bytes()
        keep = data.rfind(b"\n") + 1
        dropped = len(data) - keep
        if dropped:
            logger.warning("manifest %s: dropping %d bytes of a partial line", writer.path, dropped)
            with open(writer.path, "r+b") as f:
                f.truncate(keep)
                f.flush()
                os.fsync(f.fileno())
        for line in data[:keep].splitlines():
            try:
                entry = json.loads(line)
            except ValueError as exc:
                raise ManifestError(f"line {writer._count}: not JSON") from exc
            if canonical_json(entry) != line:
                raise ManifestError(f"line {writer._count}: not canonical")
            if entry.get("seq") != writer._count or entry.get("prev") != writer._head:
                raise ManifestError(f"line {writer._count}: chain broken")
            if writer._count == 0:
                writer._recording_id = str(entry.get("recording_id", ""))
            writer._head = sha256_hex(line)
            writer._digest.update(line + b"\n")
            writer._size += len(line) + 1
            writer._count += 1
        writer._file = open(writer.path, "ab")  # closed in close()
        return writer, dropped

    @property
    def head(self) -> str:
        """Hash of the last entry (``GENESIS`` when empty)."""
        return self._head

    @property
    def count(self) -> int:
        """Number of entries written."""
        return self._count

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Chain, write and fsync one entry; returns it with ``seq`` and ``prev`` filled in."""
        chained = dict(entry, seq=self._count, prev=self._head)
        line = canonical_json(chained)
        if b"\n" in line:  # json.dumps escapes newlines; this guards the line framing anyway
            raise ValueError("manifest entry serialises with a newline")
        self._file.write(line + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._head = sha256_hex(line)
        self._digest.update(line + b"\n")
        self._size += len(line) + 1
        self._count += 1
        return chained

    def signature_document(self) -> dict[str, Any]:
        """The current ``manifest.sig`` content (signed fields plus signature)."""
        fields = {
            "format": SIGNATURE_FORMAT,
            "algorithm": "Ed25519",
            "recording_id": self._recording_id,
            "manifest_sha256": self._digest.hexdigest(),
            "bytes": self._size,
            "entries": self._count,
            "head": self._head,
            "public_key_sha256": self._signer.fingerprint(),
        }
        signature = self._signer.sign(signed_message(fields))
        return dict(fields, signature=base64.b64encode(signature).decode("ascii"))

    @property
    def unsigned(self) -> bool:
        """Whether entries were appended since the last :meth:`sign`."""
        return self._signed_count != self._count

    def sign(self) -> None:
        """Atomically rewrite ``manifest.sig`` over everything appended so far."""
        atomic_write(self.folder / SIGNATURE_NAME, canonical_json(self.signature_document()))
        self._signed_count = self._count

    def close(self) -> None:
        """Close the manifest file (entries are already durable)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def read_manifest_lines(path: Path) -> tuple[list[bytes], bytes]:
    """Split a manifest into complete lines and a trailing partial line (``b""`` if none)."""
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    return data[:keep].splitlines(), data[keep:]


def signature_fields(document: dict[str, Any]) -> dict[str, Any]:
    """The signed part of a ``manifest.sig`` document (everything but the signature)."""
    return {k: v for k, v in document.items() if k != "signature"}
