"""Two headless Chromium pages with fake cameras join one hearing and each plays the other's video."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.browser import chromium
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.media]

FRAMES_DECODED = """
async () => {
  const pc = window.tingshen && window.tingshen.pc;
  if (!pc) return 0;
  const stats = await pc.getStats();
  let frames = 0;
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded || 0;
  });
  return frames;
}
"""


async def frames_decoded(page: Any) -> int:
    return int(await page.evaluate(FRAMES_DECODED))


async def test_two_browsers_see_each_other(server: RunningServer) -> None:
    hearing = await server.create_hearing("judge:审判长", "party:李四")
    (judge_url, party_url) = [i["url"] for i in hearing["invites"]]
    async with chromium() as browser:
        pages = []
        joined_at = []
        for url in (judge_url, party_url):
            context = await browser.new_context()  # type: ignore[attr-defined]
            page = await context.new_page()
            page.on("console", lambda m: print("console:", m.text))
            await page.goto(url)
            await page.get_by_test_id("join-button").click()
            joined_at.append(time.monotonic())
            pages.append(page)
        judge, party = pages
        # each page shows one tile, named for the other participant, with a playing video
        await party.locator(
            '[data-testid="participant-tile"][data-participant-name="审判长"] video'
        ).wait_for(timeout=20000)
        await judge.locator(
            '[data-testid="participant-tile"][data-participant-name="李四"] video'
        ).wait_for(timeout=20000)
        for page in pages:
            state = page.get_by_test_id("connection-state")
            await page.wait_for_function(
                "document.querySelector('[data-testid=connection-state]').dataset.state === 'connected'",
                timeout=20000,
            )
            assert await state.get_attribute("data-state") == "connected"

        first_frame = []
        for page, t0 in zip(pages, joined_at, strict=True):
            deadline = time.monotonic() + 20
            while await frames_decoded(page) == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            first_frame.append(time.monotonic() - t0)
        print(f"join to first remote frame: {[round(x, 2) for x in first_frame]} s")
        before = [await frames_decoded(p) for p in pages]
        await asyncio.sleep(2)
        after = [await frames_decoded(p) for p in pages]
        # the fake camera runs at ~20 fps: 2 s must decode well over 10 frames on each side
        assert all(a - b > 10 for a, b in zip(after, before, strict=True)), (before, after)

        # the party leaves: the judge's tile for it disappears, the judge's page stays connected
        await party.get_by_test_id("leave-button").click()
        await judge.locator(
            '[data-testid="participant-tile"][data-participant-name="李四"]'
        ).wait_for(state="detached", timeout=10000)
