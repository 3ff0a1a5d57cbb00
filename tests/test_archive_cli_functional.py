"""`tingshen archive|audit|token` against a real server and on a data folder."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from recorder.manifest import file_sha256
from tests.archive_fixtures import Recorded, recorded_hearing
from tests.conftest import RunningServer


async def tingshen(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "server.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "TINGSHEN_TOKEN": "", **env},
        )

    return await asyncio.to_thread(run)


def remote(server: RunningServer, token: str | None = None) -> dict[str, str]:
    env = {"TINGSHEN_SERVER": server.base_url, "TINGSHEN_DATA": str(server.data)}
    if token is not None:
        env["TINGSHEN_TOKEN"] = token
    return env


async def test_token_list_show_pull_resume_verify(server: RunningServer, tmp_path: Path) -> None:
    recorded: Recorded = await recorded_hearing(server)
    rid = recorded.recording_id
    issued = await tingshen("token", "--role", "archivist", "--subject", "wang", env=remote(server))
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    env = remote(server, token)
    denied = await tingshen("token", "--role", "admin", env=env)
    assert denied.returncode == 2 and "403" in denied.stderr  # archivists issue no tokens

    listed = await tingshen("archive", "list", "--case", "刑初5", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == [rid]

    shown = await tingshen("archive", "show", rid, "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    files = json.loads(shown.stdout)["files"]
    assert all(f["url"].startswith(server.base_url) and len(f["sha256"]) == 64 for f in files)

    # an interrupted pull: one segment half there, another's partial bytes wrong
    segments = sorted(f["name"] for f in files if f["kind"] == "segment")
    dest = tmp_path / "pulled" / rid
    half = dest / segments[0]
    half.parent.mkdir(parents=True)
    data = (recorded.folder / segments[0]).read_bytes()
    Path(f"{half}.part").write_bytes(data[: len(data) // 2])
    stat = (recorded.folder / segments[0]).stat()
    Path(f"{half}.part.etag").write_text(f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"')
    wrong = dest / segments[1]
    Path(f"{wrong}.part").write_bytes(b"\x00" * 100)
    Path(f"{wrong}.part.etag").write_text('"stale-version"')

    pulled = await tingshen("archive", "pull", rid, "--to", str(tmp_path / "pulled"), env=env)
    assert pulled.returncode == 0, pulled.stderr
    assert "1 resumed" in pulled.stdout, pulled.stdout
    for f in files:
        assert file_sha256(dest / f["name"])[0] == f["sha256"], f["name"]
    assert not list(dest.rglob("*.part*"))

    again = await tingshen("archive", "pull", rid, "--to", str(tmp_path / "pulled"), env=env)
    assert again.returncode == 0 and "0 downloaded" in again.stdout, again.stdout

    key = tmp_path / "court.pem"
    public = await tingshen("archive", "public-key", env={"TINGSHEN_DATA": str(server.data)})
    key.write_text(public.stdout)
    checked = await tingshen("archive", "verify", str(dest), "--key", str(key), env={})
    assert checked.returncode == 0 and checked.stdout.startswith("OK"), checked.stdout
    on_server = await tingshen("archive", "verify", rid, env=env)
    assert on_server.returncode == 0 and on_server.stdout.startswith("OK"), on_server.stdout

    bundle = tmp_path / "b.zip"
    exported = await tingshen("archive", "export", rid, "--to", str(bundle), env=env)
    assert exported.returncode == 0, exported.stderr
    offline = await tingshen("archive", "verify", str(bundle), "--key", str(key), env={})
    assert offline.returncode == 0, offline.stdout

    audit = await tingshen("audit", "verify", "--json", env=env)
    assert audit.returncode == 0, audit.stdout
    assert json.loads(audit.stdout)["ok"] is True


async def test_local_data_folder_commands(server: RunningServer, tmp_path: Path) -> None:
    recorded = await recorded_hearing(server)
    rid = recorded.recording_id
    env = {"TINGSHEN_DATA": str(server.data), "TINGSHEN_SERVER": ""}
    shown = await tingshen("archive", "show", rid, "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    files = json.loads(shown.stdout)["files"]
    assert all(f["url"].startswith("file://") for f in files)
    exported = await tingshen("archive", "export", rid, "--to", str(tmp_path), env=env)
    assert exported.returncode == 0, exported.stderr
    bundle = tmp_path / f"tingshen-{rid}.zip"
    checked = await tingshen("archive", "verify", str(bundle), env=env)
    assert checked.returncode == 0, checked.stdout
    audit = await tingshen("audit", "verify", env=env)
    assert audit.returncode == 0 and audit.stdout.startswith("OK"), audit.stdout
    for bad in ("../../etc/passwd", "x" * 100, "a;b"):
        refused = await tingshen("archive", "show", bad, env=env)
        assert refused.returncode == 2, bad
    needs_server = await tingshen("archive", "pull", rid, "--to", str(tmp_path), env=env)
    assert needs_server.returncode == 2 and "needs a server" in needs_server.stderr
