"""The lobby and the presiding judge's controls on the hearing page, in headless Chromium.

A party waits in the lobby until the judge admits it from the judge's page; then both see each other.
The judge pauses the recording (the party's page says so), resumes, and ends the hearing with the
two-click confirmation. A second test: the judge refuses one waiting person and ejects another.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest

from tests.browser import chromium, open_and_join, tile
from tests.conftest import RunningServer
from tests.test_browser_functional import FRAMES_DECODED

pytestmark = [pytest.mark.browser, pytest.mark.media]


ATTRIBUTE_IS = """
([testid, name, value]) => {
  const el = document.querySelector(`[data-testid="${testid}"]`);
  return el !== null && el.getAttribute(name) === value;
}
"""


async def frames_decoded(page: Any) -> int:
    return int(await page.evaluate(FRAMES_DECODED))


async def wait_attribute(
    page: Any, testid: str, name: str, value: str, timeout: float = 20
) -> None:
    await page.wait_for_function(ATTRIBUTE_IS, arg=[testid, name, value], timeout=timeout * 1000)


async def wait_video_flowing(page: Any) -> None:
    """Frames are decoded, and keep being decoded (the fake camera runs at about 20 fps)."""
    deadline = time.monotonic() + 20
    while await frames_decoded(page) == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    before = await frames_decoded(page)
    await asyncio.sleep(2)
    after = await frames_decoded(page)
    assert after - before > 10, (before, after)


async def test_lobby_admit_pause_resume_end(server: RunningServer) -> None:
    hearing = await server.create_hearing("judge:审判长", "party:李四", lobby=True)
    (judge_url, party_url) = [i["url"] for i in hearing["invites"]]
    errors: list[str] = []
    async with chromium() as browser:
        judge = await open_and_join(browser, judge_url, "judge", errors)
        await wait_attribute(judge, "connection-state", "data-state", "connected")
        party = await open_and_join(browser, party_url, "party", errors)

        # the party waits in the lobby and sees no one
        await party.get_by_test_id("lobby-waiting").wait_for(state="visible", timeout=20000)
        assert "审判长将准许您进入" in await party.get_by_test_id("lobby-waiting").inner_text()
        assert await party.evaluate("window.tingshen.admitted") is False
        assert await party.get_by_test_id("participant-tile").count() == 0
        assert await party.get_by_test_id("notes-panel").is_hidden()
        assert await party.get_by_test_id("end-hearing-button").is_hidden()

        # the judge sees one admit button, for 李四, and no tile for 李四 yet
        admit = judge.locator('[data-testid="admit-button"][data-participant-name="李四"]')
        await admit.wait_for(timeout=20000)
        assert await judge.get_by_test_id("admit-button").count() == 1
        assert await judge.get_by_test_id("refuse-button").count() == 1
        assert [w["name"] for w in await judge.evaluate("window.tingshen.waiting")] == ["李四"]
        assert await tile(judge, "李四").count() == 0
        # the hearing is being recorded, and says so
        await wait_attribute(judge, "recording-state", "data-state", "recording")

        admitted_at = time.monotonic()
        await admit.click()
        await party.get_by_test_id("lobby-waiting").wait_for(state="hidden", timeout=10000)
        await admit.wait_for(state="detached", timeout=10000)
        assert await judge.evaluate("window.tingshen.waiting") == []

        # each page shows the other's tile with a playing video
        await tile(party, "审判长").locator("video").wait_for(timeout=20000)
        await tile(judge, "李四").locator("video").wait_for(timeout=20000)
        for page in (judge, party):
            await wait_video_flowing(page)
        print(f"admit to video on both pages: {time.monotonic() - admitted_at:.2f} s")
        # the judge (only) has an eject button on the party's tile
        assert await tile(judge, "李四").get_by_test_id("eject-button").is_visible()
        assert await party.get_by_test_id("eject-button").is_hidden()
        await wait_attribute(party, "recording-state", "data-state", "recording")

        # the judge writes a line of the hearing log; the party gets nothing of it
        await judge.get_by_test_id("note-input").fill("宣誓")
        await judge.get_by_test_id("note-submit").click()
        entry = judge.get_by_test_id("note-entry")
        await entry.wait_for(timeout=10000)
        text = await entry.inner_text()
        assert "宣誓" in text and "审判长" in text, text
        assert re.search(r"\b\d{2}:\d{2}:\d{2}\b", text), text
        assert await judge.get_by_test_id("note-input").input_value() == ""
        assert await party.evaluate("window.tingshen.notes") == []

        # pause for a recess: everyone's page says the recording is paused, and why
        await judge.get_by_test_id("pause-reason").select_option("recess")
        await judge.get_by_test_id("pause-button").click()
        await wait_attribute(party, "recording-state", "data-state", "paused", timeout=10)
        assert "休庭" in await party.get_by_test_id("recording-state").inner_text()
        await wait_attribute(judge, "recording-state", "data-state", "paused", timeout=10)
        resume = judge.get_by_test_id("resume-button")
        await resume.wait_for(state="visible", timeout=5000)
        assert await judge.get_by_test_id("pause-button").is_hidden()

        await resume.click()
        await wait_attribute(party, "recording-state", "data-state", "recording", timeout=10)
        await judge.get_by_test_id("pause-button").wait_for(state="visible", timeout=5000)

        # ending takes a second click; the first only arms the button
        end = judge.get_by_test_id("end-hearing-button")
        await end.click()
        assert await end.get_attribute("data-confirming") == "true"
        await asyncio.sleep(0.3)
        assert await judge.evaluate("window.tingshen.state") == "connected"
        await end.click()
        for page in (judge, party):
            await wait_attribute(page, "connection-state", "data-state", "ended", timeout=10)
            await page.get_by_test_id("closed-screen").wait_for(state="visible", timeout=5000)
    assert errors == []


async def test_refuse_and_eject(server: RunningServer) -> None:
    hearing = await server.create_hearing("judge:审判长", "party:李四", "witness:王五", lobby=True)
    (judge_url, party_url, witness_url) = [i["url"] for i in hearing["invites"]]
    errors: list[str] = []
    async with chromium() as browser:
        judge = await open_and_join(browser, judge_url, "judge", errors)
        await wait_attribute(judge, "connection-state", "data-state", "connected")
        party = await open_and_join(browser, party_url, "party", errors)
        witness = await open_and_join(browser, witness_url, "witness", errors)
        for page in (party, witness):
            await page.get_by_test_id("lobby-waiting").wait_for(state="visible", timeout=20000)
        await judge.locator('[data-testid="admit-button"][data-participant-name="王五"]').wait_for(
            timeout=20000
        )
        await judge.locator('[data-testid="admit-button"][data-participant-name="李四"]').wait_for(
            timeout=20000
        )

        # refused: the witness's page says so, for good (no rejoin)
        await judge.locator('[data-testid="refuse-button"][data-participant-name="王五"]').click()
        await wait_attribute(witness, "connection-state", "data-state", "refused", timeout=10)
        assert "未获准许进入" in await witness.get_by_test_id("closed-screen").inner_text()
        assert await witness.get_by_test_id("rejoin-button").is_hidden()
        await (
            judge.locator('[data-testid="lobby-entry"]')
            .filter(has_text="王五")
            .wait_for(state="detached", timeout=10000)
        )

        # admitted, then ejected with the two-click confirmation
        await judge.locator('[data-testid="admit-button"][data-participant-name="李四"]').click()
        await party.get_by_test_id("lobby-waiting").wait_for(state="hidden", timeout=10000)
        eject = tile(judge, "李四").get_by_test_id("eject-button")
        await eject.wait_for(timeout=20000)
        await eject.click()
        assert await eject.get_attribute("data-confirming") == "true"
        # left alone, it disarms itself
        await judge.wait_for_function(
            "!document.querySelector('[data-testid=eject-button]').dataset.confirming",
            timeout=5000,
        )
        await asyncio.sleep(0.2)
        assert await party.evaluate("window.tingshen.state") == "connected"
        await eject.click()
        await eject.click()
        await wait_attribute(party, "connection-state", "data-state", "ejected", timeout=5)
        assert "您已被请出庭审" in await party.get_by_test_id("closed-screen").inner_text()
        assert await party.get_by_test_id("rejoin-button").is_hidden()
        await tile(judge, "李四").wait_for(state="detached", timeout=5000)
        await asyncio.sleep(1.5)  # no automatic rejoin
        assert await party.evaluate("window.tingshen.state") == "ejected"
        assert await judge.evaluate("window.tingshen.state") == "connected"
    assert errors == []
