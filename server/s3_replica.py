"""An S3-compatible replica target (MinIO, Ceph RGW, a cloud bucket) through aiobotocore.

How this works: one aiobotocore client lives as long as the target (opened on first use, closed
by :meth:`S3Target.close`). Objects are named ``<prefix><hearing>/<recording>/<file>``. Each object
is uploaded with its SHA-256 in the object's metadata (``x-amz-meta-sha256``) so an operator can
see it, but fixity never trusts metadata: :meth:`S3Target.sha256` reads the object back and hashes
it (an ETag is an MD5, or not even that for multipart uploads). Files above ``MULTIPART_THRESHOLD``
(a long hearing's composite) go up in 16 MiB parts; file reads and hashing run in threads.

aiobotocore is an optional dependency (``pip install aiobotocore``): importing this module does
not need it, constructing a target does.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path
from typing import Any

__all__ = ["MULTIPART_THRESHOLD", "S3Settings", "S3Target"]

logger = logging.getLogger(__name__)

MULTIPART_THRESHOLD = 64 * 1024 * 1024
PART_SIZE = 16 * 1024 * 1024
_READ_CHUNK = 1 << 20


class S3Settings:
    """Where and how to reach the bucket (from ``Settings.s3_*``)."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.endpoint_url = endpoint_url
        self.region = region
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key


def _not_found(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


def _read_part(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


class S3Target:
    """A :class:`server.backup.ReplicaTarget` in an S3 bucket."""

    def __init__(self, settings: S3Settings) -> None:
        from aiobotocore.session import get_session  # optional dependency: fail here, clearly

        self.settings = settings
        self.name = f"s3:{settings.bucket}/{settings.prefix}"
        self._session = get_session()
        self._client: Any = None
        self._context: Any = None
        self._lock = asyncio.Lock()

    async def _s3(self) -> Any:
        async with self._lock:
            if self._client is None:
                self._context = self._session.create_client(
                    "s3",
                    region_name=self.settings.region,
                    endpoint_url=self.settings.endpoint_url,
                    aws_access_key_id=self.settings.access_key_id,
                    aws_secret_access_key=self.settings.secret_access_key,
                )
                self._client = await self._context.__aenter__()
            return self._client

    def _object(self, key: str) -> str:
        return self.settings.prefix + key

    async def size(self, key: str) -> int | None:
        s3 = await self._s3()
        try:
            head = await s3.head_object(Bucket=self.settings.bucket, Key=self._object(key))
        except Exception as exc:
            if _not_found(exc):
                return None
            raise
        return int(head["ContentLength"])

    async def put(self, key: str, source: Path, data: bytes | None = None) -> None:
        s3 = await self._s3()
        name = self._object(key)
        if data is None:
            size = (await asyncio.to_thread(source.stat)).st_size
            if size > MULTIPART_THRESHOLD:
                await self._put_multipart(s3, name, source, size)
                return
            data = await asyncio.to_thread(source.read_bytes)
        digest = hashlib.sha256(data).hexdigest()
        await s3.put_object(
            Bucket=self.settings.bucket, Key=name, Body=data, Metadata={"sha256": digest}
        )

    async def _put_multipart(self, s3: Any, name: str, source: Path, size: int) -> None:
        bucket = self.settings.bucket
        upload = await s3.create_multipart_upload(Bucket=bucket, Key=name)
        upload_id = upload["UploadId"]
        parts = []
        try:
            for number, offset in enumerate(range(0, size, PART_SIZE), start=1):
                chunk = await asyncio.to_thread(_read_part, source, offset, PART_SIZE)
                done = await s3.upload_part(
                    Bucket=bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=chunk
                )
                parts.append({"PartNumber": number, "ETag": done["ETag"]})
            await s3.complete_multipart_upload(
                Bucket=bucket, Key=name, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            await s3.abort_multipart_upload(Bucket=bucket, Key=name, UploadId=upload_id)
            raise

    async def _stream(self, key: str) -> Any:
        s3 = await self._s3()
        try:
            response = await s3.get_object(Bucket=self.settings.bucket, Key=self._object(key))
        except Exception as exc:
            if _not_found(exc):
                return None
            raise
        return response["Body"]

    async def sha256(self, key: str) -> str | None:
        body = await self._stream(key)
        if body is None:
            return None
        digest = hashlib.sha256()
        async with body as stream:
            while chunk := await stream.read(_READ_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    async def read(self, key: str) -> bytes | None:
        body = await self._stream(key)
        if body is None:
            return None
        async with body as stream:
            return bytes(await stream.read())

    async def fetch(self, key: str, dest: Path) -> None:
        body = await self._stream(key)
        if body is None:
            raise FileNotFoundError(key)
        f = await asyncio.to_thread(open, dest, "wb")
        try:
            async with body as stream:
                while chunk := await stream.read(_READ_CHUNK):
                    await asyncio.to_thread(f.write, chunk)
        finally:
            await asyncio.to_thread(f.close)

    async def close(self) -> None:
        async with self._lock:
            if self._context is not None:
                await self._context.__aexit__(None, None, None)
            self._client = self._context = None
