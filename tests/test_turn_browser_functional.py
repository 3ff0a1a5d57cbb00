"""A browser that may only use the TURN relay (coturn, short-lived REST credentials) still joins."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium
from tests.conftest import RunningServer, free_port
from tests.test_browser_functional import frames_decoded

pytestmark = [pytest.mark.browser, pytest.mark.media]

SECRET = "test-shared-secret-for-coturn"

FORCE_RELAY = """
(() => {
  const Native = window.RTCPeerConnection;
  function RelayOnly(config, ...rest) {
    return new Native({ ...(config || {}), iceTransportPolicy: 'relay' }, ...rest);
  }
  RelayOnly.prototype = Native.prototype;
  Object.setPrototypeOf(RelayOnly, Native);
  window.RTCPeerConnection = RelayOnly;
})();
"""

SELECTED_CANDIDATE_TYPE = """
async () => {
  const pc = window.tingshen && window.tingshen.pc;
  if (!pc) return null;
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
  });
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  return local ? local.candidateType : null;
}
"""


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[int]:
    binary = shutil.which("turnserver")
    if binary is None:
        pytest.fail("turnserver is missing: `bash tests/run` installs Debian's coturn")
    port = free_port()
    relay_base = 50000 + (port % 1000) * 10
    conf = tmp_path / "turnserver.conf"
    conf.write_text(
        "\n".join(
            [
                f"listening-port={port}",
                "listening-ip=127.0.0.1",
                "relay-ip=127.0.0.1",
                f"min-port={relay_base}",
                f"max-port={relay_base + 9}",
                "realm=court.test",
                "use-auth-secret",
                f"static-auth-secret={SECRET}",
                "allow-loopback-peers",
                "no-cli",
                "no-tls",
                "no-dtls",
                "fingerprint",
                f"pidfile={tmp_path / 'turnserver.pid'}",
                "log-file=stdout",
                "simple-log",
            ]
        )
    )
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(0.5)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_relay_only_browsers_see_each_other(server: RunningServer, coturn: int) -> None:
    server.settings.turn_urls = [f"turn:127.0.0.1:{coturn}?transport=udp"]
    server.settings.turn_secret = SECRET
    hearing = await server.create_hearing("judge:审判长", "party:李四")
    async with chromium() as browser:
        pages: list[Any] = []
        for invite in hearing["invites"]:
            context = await browser.new_context()  # type: ignore[attr-defined]
            await context.add_init_script(FORCE_RELAY)
            page = await context.new_page()
            await page.goto(invite["url"])
            await page.get_by_test_id("join-button").click()
            pages.append(page)
        for page in pages:
            deadline = time.monotonic() + 30
            while await frames_decoded(page) < 10 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert await frames_decoded(page) >= 10
            assert await page.evaluate(SELECTED_CANDIDATE_TYPE) == "relay"
            servers = await page.evaluate("window.tingshen.pc.getConfiguration().iceServers")
            (turn,) = [s for s in servers if any("turn:" in u for u in s["urls"])]
            expiry = int(turn["username"].split(":")[0])
            assert 0 < expiry - time.time() <= server.settings.turn_ttl_seconds + 5
