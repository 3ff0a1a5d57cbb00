"""Shared fixtures: a real Tingshen server on loopback, and invitations to its hearings."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from server.app import create_app
from server.cli import parse_invite
from server.settings import Settings
from signaling.roles import Role

SHARED = Path(__file__).resolve().parents[2] / "shared"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    base_url: str
    data: Path
    settings: Settings
    app: web.Application

    @property
    def admin_token(self) -> str:
        return (self.data / "admin.token").read_text().strip()

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/ws"

    async def api(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        async with aiohttp.ClientSession() as session:
            async with session.request(
                method, self.base_url + path, json=body, headers=headers
            ) as response:
                return response.status, await response.json()

    async def create_hearing(
        self, *invites: str, kind: str = "hearing", lobby: bool = False
    ) -> dict[str, Any]:
        """A hearing with invitations "ROLE:NAME" or "ROLE:NAME@COURT" (as `tingshen hearing
        create --invite`); without `lobby` every role is let in at once."""
        body = {
            "caseNumber": "（2026）川33民初7号",
            "kind": kind,
            "invites": [parse_invite(i) for i in invites],
            "autoAdmit": [] if lobby else [r.value for r in Role],
        }
        status, result = await self.api("POST", "/api/hearings", body)
        assert status == 201, result
        return dict(result)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    port = free_port()
    # Background composite renders only where a test asks for them (they take a core for seconds).
    settings = Settings(
        host="127.0.0.1", port=port, data=tmp_path / "data", render_after_hearing=False
    )
    app = create_app(settings)
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", settings.data, settings, app)
    finally:
        await runner.cleanup()
