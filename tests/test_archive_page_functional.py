"""The archive page in headless Chromium: sign in, search, play, seek to a note, verify, export;
exhibits on the timeline with their hash and a download."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from tests.archive_fixtures import (
    CONTRACT,
    EXHIBIT_CASE,
    NOTE_AT,
    NOTE_TEXT,
    hearing_with_exhibits,
    issue_token,
    recorded_hearing,
)
from tests.browser import chromium
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser]

PLAYER = "document.querySelector('[data-testid=archive-player]')"


async def current_time(page: Any) -> float:
    return float(await page.evaluate(f"{PLAYER}.currentTime"))


async def test_search_play_seek_verify_export(server: RunningServer) -> None:
    recorded = await recorded_hearing(server)
    token = await issue_token(server, "archivist", subject="browser")
    async with chromium() as browser:
        page = await browser.new_page()  # type: ignore[attr-defined]
        page.on("console", lambda m: print("console:", m.text))
        await page.goto(f"{server.base_url}/archive?lang=en#token={token}")
        assert "token" not in page.url  # taken out of the address at once
        await page.get_by_test_id("archive-search").wait_for()
        assert await page.locator("h1").text_content() == "Recording archive"

        await page.get_by_test_id("search-case").fill("刑初5")
        await page.get_by_test_id("search-button").click()
        result = page.get_by_test_id("archive-result")
        await result.first.wait_for()
        assert await result.count() == 1
        assert await result.get_attribute("data-recording-id") == recorded.recording_id
        await result.click()

        player = page.get_by_test_id("archive-player")
        await player.wait_for()
        assert await player.get_attribute("data-source") == "p1-video"
        await page.wait_for_function(f"{PLAYER}.readyState >= 1", timeout=15000)
        duration = float(await page.evaluate(f"{PLAYER}.duration"))
        assert 2.5 < duration < 3.5, duration
        await page.evaluate(f"{PLAYER}.play()")
        await page.wait_for_function(f"{PLAYER}.currentTime > 0.3", timeout=15000)  # it plays

        # the clerk's note on the timeline: a click seeks the player to it
        note = page.locator('[data-testid="timeline-event"][data-kind="note"]')
        assert NOTE_TEXT in (await note.text_content() or "")
        await page.evaluate(f"{PLAYER}.pause(); {PLAYER}.currentTime = 2.8")
        await note.click()
        await page.wait_for_function(
            f"Math.abs({PLAYER}.currentTime - {NOTE_AT}) < 0.6 && !{PLAYER}.seeking",
            timeout=10000,
        )
        gap = page.locator('[data-testid="timeline-event"][data-kind="gap"]')
        assert "recess" in (await gap.text_content() or "")

        badge = page.get_by_test_id("integrity-badge")
        assert await badge.get_attribute("data-state") == "unknown"
        await page.get_by_test_id("verify-button").click()
        verdict = page.locator('[data-testid="verify-result"][data-ok]')
        await verdict.wait_for(timeout=15000)
        assert await verdict.get_attribute("data-ok") == "true"
        assert await badge.get_attribute("data-state") == "ok"

        export = page.get_by_test_id("export-button")
        href = await export.get_attribute("href")
        assert href is not None and f"/recordings/{recorded.recording_id}/export?ticket=" in href
        status = await page.evaluate("(url) => fetch(url).then((r) => r.status)", href)
        assert status == 200

        # a damaged segment: verify again names it
        segment = sorted(recorded.folder.glob("p1-audio/*.webm"))[0]
        raw = bytearray(segment.read_bytes())
        raw[-5] ^= 0xFF
        segment.write_bytes(bytes(raw))
        await page.get_by_test_id("verify-button").click()
        await page.locator('[data-testid="verify-result"][data-ok="false"]').wait_for(timeout=15000)
        assert segment.name in (await page.get_by_test_id("verify-result").text_content() or "")
        assert await badge.get_attribute("data-state") == "failed"

        await page.get_by_test_id("language-select").select_option("zh-CN")
        assert await page.locator("h1").text_content() == "录像档案"
        assert await page.get_by_test_id("verify-button").text_content() == "立即校验"


async def test_exhibits_on_the_timeline(server: RunningServer, tmp_path: Path) -> None:
    shown = await hearing_with_exhibits(server)
    token = await issue_token(server, "archivist", subject="browser")
    contract = hashlib.sha256(CONTRACT).hexdigest()
    async with chromium() as browser:
        page = await browser.new_page(accept_downloads=True)  # type: ignore[attr-defined]
        page.on("console", lambda m: print("console:", m.text))
        await page.goto(f"{server.base_url}/archive?lang=en#token={token}")
        await page.get_by_test_id("search-case").fill(EXHIBIT_CASE)
        await page.get_by_test_id("search-button").click()
        result = page.locator(
            f'[data-testid="archive-result"][data-recording-id="{shown.recording_id}"]'
        )
        await result.click()

        entries = page.locator('[data-testid="timeline-event"][data-kind="exhibit"]')
        await entries.first.wait_for()
        assert await entries.count() == 3  # the contract was shown twice, under two names
        first = page.locator("#timeline li").filter(has=entries).first
        label = await entries.first.text_content() or ""
        assert "Exhibit: 证据1 合同.pdf" in label and "公诉人" in label and "Prosecutor" in label
        registered_at = shown.registered[0]["at"]
        assert await entries.first.locator("time").get_attribute("datetime") is not None
        assert (await entries.first.get_attribute("data-wall") or "").startswith(
            str(int(registered_at))
        )
        details = first.get_by_test_id("timeline-exhibit")
        assert await details.get_attribute("data-sha256") == contract
        assert contract in (await details.text_content() or "")
        assert f"{len(CONTRACT)} bytes" in (await details.text_content() or "")

        link = first.get_by_test_id("exhibit-download")
        assert await link.text_content() == "Download exhibit"
        async with page.expect_download() as waiting:
            await link.click()
        download = await waiting.value
        assert download.suggested_filename == "证据1 合同.pdf"
        saved = tmp_path / "saved.pdf"
        await download.save_as(saved)
        assert saved.read_bytes() == CONTRACT

        await page.get_by_test_id("language-select").select_option("zh-CN")
        label = await entries.first.text_content() or ""
        assert "证据：证据1 合同.pdf" in label and "公诉人 公诉人" in label
        assert await link.text_content() == "下载证据"


async def test_a_bad_token_asks_to_sign_in_again(server: RunningServer) -> None:
    async with chromium() as browser:
        page = await browser.new_page()  # type: ignore[attr-defined]
        await page.goto(f"{server.base_url}/archive?lang=en#token=not-a-token")
        await page.get_by_test_id("archive-sign-in").wait_for()
        message = page.get_by_test_id("archive-message")
        await page.wait_for_function(
            "document.querySelector('[data-testid=archive-message]').textContent.length > 0"
        )
        assert "sign in again" in (await message.text_content() or "")
