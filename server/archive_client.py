"""A small blocking client of the archive API for the CLI: JSON calls, resumable checked downloads.

How a pull works: each file of the recording detail is downloaded to ``NAME.part`` next to its
final name. An interrupted download leaves the ``.part`` file and, beside it, the entity tag of
the version it came from (``NAME.part.etag``); the next pull asks only for the missing bytes
(``Range: bytes=N-`` with ``If-Range: ETAG``). If the file changed meanwhile the server sends all
of it (200) and the download starts over. A finished download is checked against the SHA-256 the
detail (or the ``X-Tingshen-SHA256`` header) gives; a mismatch is downloaded once more from the
start, then reported. Only then is ``.part`` renamed to the final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from recorder.manifest import file_sha256
from server.playback import safe_relative

__all__ = ["ArchiveClient", "ClientError", "PullReport"]

_CHUNK = 256 * 1024


class ClientError(Exception):
    """The server refused a call, or could not be reached."""


@dataclass
class PullReport:
    """What :meth:`ArchiveClient.pull` did."""

    folder: Path
    downloaded: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already present with the right hash
    bytes: int = 0


class ArchiveClient:
    """Talks to one server with one bearer token."""

    def __init__(self, server: str, token: str, timeout: float = 60.0) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.timeout = timeout

    # -- plumbing --------------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        url = path if path.startswith(("http://", "https://")) else self.server + path
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416:
                return exc
            try:
                detail = json.loads(exc.read())["error"]
                message = f"{detail['code']}: {detail['message']}"
            except Exception:
                message = str(exc.reason)
            raise ClientError(f"{method} {urlsplit(url).path}: HTTP {exc.code} {message}") from None
        except urllib.error.URLError as exc:
            raise ClientError(f"cannot reach {self.server}: {exc.reason}") from None

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET a JSON document (``params``: query parameters, None values left out)."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if query:
            path += "?" + urlencode(query)
        with self._request("GET", path) as response:
            return json.loads(response.read() or b"null")

    def post_json(self, path: str, body: Any = None) -> Any:
        """POST (a JSON body) and return the JSON answer."""
        with self._request("POST", path, body if body is not None else {}) as response:
            return json.loads(response.read() or b"null")

    # -- downloads ---------------------------------------------------------------------------------

    def download(
        self,
        path: str,
        dest: Path,
        *,
        sha256: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[str, bool]:
        """Download ``path`` to ``dest`` (resuming a ``.part``); returns (SHA-256, resumed)."""
        part = dest.with_name(dest.name + ".part")
        etag_file = dest.with_name(dest.name + ".part.etag")
        dest.parent.mkdir(parents=True, exist_ok=True)
        resumed = False
        for attempt in (1, 2):
            have = part.stat().st_size if part.exists() else 0
            headers = {}
            if have and etag_file.exists():
                headers = {"Range": f"bytes={have}-", "If-Range": etag_file.read_text().strip()}
            separator = "&" if "?" in path else "?"
            with self._request("GET", f"{path}{separator}download=1", headers=headers) as response:
                status = response.status
                expected = sha256 or response.headers.get("X-Tingshen-SHA256")
                etag = response.headers.get("ETag")
                if status == 206:
                    mode, resumed = "ab", True
                    if progress is not None:
                        progress(have)
                elif status == 416:
                    mode = ""  # the .part already holds every byte
                else:
                    mode = "wb"
                    if etag:
                        etag_file.write_text(etag)
                if mode:
                    with open(part, mode) as out:
                        while chunk := response.read(_CHUNK):
                            out.write(chunk)
                            if progress is not None:
                                progress(len(chunk))
            digest, _ = file_sha256(part)
            if expected is None or digest == expected:
                os.replace(part, dest)
                etag_file.unlink(missing_ok=True)
                return digest, resumed
            part.unlink(missing_ok=True)  # a bad resume or a changed file: once more, whole
            etag_file.unlink(missing_ok=True)
            if attempt == 2:
                raise ClientError(f"{path}: SHA-256 {digest} is not the listed {expected}")
        raise AssertionError("unreachable")  # pragma: no cover

    def pull(
        self,
        recording_id: str,
        to: Path,
        progress: Callable[[int, int], Callable[[int], None]] | None = None,
    ) -> PullReport:
        """Download every file of a recording into ``to/<recording_id>/`` (see module doc).

        ``progress(total_bytes, files)`` may return a callback that is given each byte count.
        """
        detail = self.get_json(f"/api/archive/recordings/{recording_id}")
        folder = to / recording_id
        report = PullReport(folder)
        files = [f for f in detail["files"] if safe_relative(str(f["name"])) is not None]
        total = sum(int(f.get("bytes") or 0) for f in files)
        advance = progress(total, len(files)) if progress is not None else None
        for item in files:
            name = str(item["name"])
            dest = folder.joinpath(*name.split("/"))
            want = item.get("sha256")
            if dest.is_file() and want is not None and file_sha256(dest)[0] == want:
                report.skipped.append(name)
                if advance is not None:
                    advance(int(item.get("bytes") or 0))
                continue
            _, resumed = self.download(item["url"], dest, sha256=want, progress=advance)
            report.downloaded.append(name)
            if resumed:
                report.resumed.append(name)
            report.bytes += dest.stat().st_size
        return report

    def export(self, recording_id: str, out: Path) -> tuple[str, int]:
        """Download the export bundle to ``out``; returns its (SHA-256, size), checked against
        the server's ``X-Tingshen-SHA256``."""
        part = out.with_name(out.name + ".part")
        digest = hashlib.sha256()
        size = 0
        with self._request("GET", f"/api/archive/recordings/{recording_id}/export") as response:
            expected = response.headers.get("X-Tingshen-SHA256")
            with open(part, "wb") as f:
                while chunk := response.read(_CHUNK):
                    f.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
        if expected and digest.hexdigest() != expected:
            part.unlink(missing_ok=True)
            raise ClientError(f"export of {recording_id}: the bundle arrived damaged")
        os.replace(part, out)
        return digest.hexdigest(), size
