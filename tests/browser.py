"""Headless Chromium (Debian's) driven by Playwright, as a real WebRTC client with a fake camera."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/lib/chromium/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
]


def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `bash tests/run` installs Debian's chromium")
    return CHROMIUM


@asynccontextmanager
async def chromium() -> AsyncIterator[object]:
    """Chromium with a fresh profile (Playwright makes a new user-data-dir per launch)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=str(chromium_path()), args=FLAGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


async def open_and_join(browser: Any, url: str, label: str, errors: list[str]) -> Any:
    """A new context and page on `url`, console printed, page errors collected; joined."""
    context = await browser.new_context()
    page = await context.new_page()
    page.on("console", lambda m: print(f"console[{label}]:", m.text))
    page.on("pageerror", lambda e: errors.append(f"{label}: {e}"))
    await page.goto(url)
    await page.get_by_test_id("join-button").click()
    return page


def tile(page: Any, name: str) -> Any:
    """The participant tile named `name` on `page`."""
    return page.locator(f'[data-testid="participant-tile"][data-participant-name="{name}"]')
