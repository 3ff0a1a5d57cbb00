"""Tibetan pages in headless Chromium: `?lang=bo` gives Tibetan text, drawn with the served font.

Whatever fonts the machine has, Tibetan on these pages must come from web/fonts (it is first in the
`:lang(bo)` stack). Three things show that it does: the font's response (200, font/woff2, cached), the
page's FontFace reaching `loaded`, and Chromium's own account of which font drew a node's text
(DevTools `CSS.getPlatformFontsForNode`: the served, "custom" font). A fourth shows the glyphs are real
and not tofu: different Tibetan letters drawn with it on a canvas differ, in pixels and in width
(missing glyphs are all the same box). The last test blocks the font and checks that the probe notices.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest

from tests.archive_fixtures import issue_token
from tests.browser import chromium
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser]

FAMILY = "Tibetan Machine Uni"
FONT_PATH = "/static/fonts/TibetanMachineUni.woff2"
TIBETAN = re.compile(r"[\u0f00-\u0fff]")
NAMES = {"app.name", "landing.title"}  # the product's name, the same in every language

# Visible elements filled from the dictionary: [key, text].
VISIBLE_STRINGS = """
() => [...document.querySelectorAll("[data-i18n]")]
  .filter((el) => el.checkVisibility() && el.textContent.trim() !== "")
  .map((el) => [el.dataset.i18n, el.textContent])
"""

# Visible buttons and controls, by their text or, for icon buttons, their accessible name.
VISIBLE_CONTROLS = """
() => [...document.querySelectorAll("button, select, [role=status]")]
  .filter((el) => el.checkVisibility() && !el.closest(".topbar"))
  .map((el) => (el.getAttribute("aria-label") || el.textContent || "").trim())
  .filter((label) => label !== "")
"""

FONT_STATUS = f"""
() => [...document.fonts].filter((f) => f.family.replaceAll('"', "") === "{FAMILY}")
  .map((f) => f.status)
"""

# Tibetan letters drawn one by one with the served font: their widths and a digest of their pixels.
GLYPH_PROBE = f"""
async () => {{
  const font = '40px "{FAMILY}"';
  await document.fonts.load(font, "ཀ").catch(() => []); // a font that failed: draw with the fallback
  const canvas = document.createElement("canvas");
  canvas.width = 80;
  canvas.height = 80;
  const ctx = canvas.getContext("2d", {{ willReadFrequently: true }});
  ctx.font = font;
  const result = [];
  for (const letter of ["ཀ", "ཁ", "ག", "ང", "ཉ", "ཤ", "ཨ"]) {{
    ctx.clearRect(0, 0, 80, 80);
    ctx.fillText(letter, 10, 55);
    const alpha = ctx.getImageData(0, 0, 80, 80).data.filter((_, i) => i % 4 === 3);
    let digest = 0;
    let ink = 0;
    alpha.forEach((a, i) => {{
      digest = (digest * 31 + a * (i + 1)) >>> 0;
      ink += a > 0 ? 1 : 0;
    }});
    result.push({{ letter, width: ctx.measureText(letter).width, digest, ink }});
  }}
  return result;
}}
"""


async def fonts_drawing(page: Any, selector: str) -> list[dict[str, Any]]:
    """The fonts Chromium used for the text of the first node matching `selector` (DevTools)."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("DOM.enable")
    await cdp.send("CSS.enable")
    root = (await cdp.send("DOM.getDocument"))["root"]["nodeId"]
    node = (await cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector}))["nodeId"]
    assert node, selector
    fonts = await cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})
    await cdp.detach()
    return list(fonts["fonts"])


def record_font_responses(page: Any) -> list[Any]:
    responses: list[Any] = []
    page.on("response", lambda r: responses.append(r) if FONT_PATH in r.url else None)
    return responses


async def assert_tibetan_page(page: Any, heading: str, responses: list[Any]) -> None:
    """The page is in bo, its visible strings are Tibetan, and the served font draws them."""
    assert await page.evaluate("document.documentElement.lang") == "bo"
    assert TIBETAN.search(await page.title()), await page.title()
    visible = await page.evaluate(VISIBLE_STRINGS)
    assert len(visible) >= 3, visible
    not_tibetan = [(k, s) for k, s in visible if k not in NAMES and not TIBETAN.search(s)]
    assert not not_tibetan, not_tibetan
    select = page.get_by_test_id("language-select")
    assert await select.input_value() == "bo"
    assert "བོད་ཡིག" in await select.locator("option").all_text_contents()

    await page.wait_for_function(f"({FONT_STATUS})().includes('loaded')", timeout=15000)
    assert await page.evaluate(FONT_STATUS) == ["loaded"]
    await page.evaluate("document.fonts.ready")
    assert await page.evaluate(f"document.fonts.check('16px \"{FAMILY}\"', 'བོད')")
    [response] = responses
    assert response.status == 200
    assert response.headers["content-type"] == "font/woff2"
    assert "max-age=31536000" in response.headers["cache-control"]

    fonts = await fonts_drawing(page, heading)
    served = [f for f in fonts if f["isCustomFont"] and f["familyName"] == FAMILY]
    assert served and served[0]["glyphCount"] > 0, fonts

    glyphs = await page.evaluate(GLYPH_PROBE)
    assert all(g["ink"] > 0 for g in glyphs), glyphs
    assert len({g["digest"] for g in glyphs}) == len(glyphs), glyphs  # each letter its own shape
    assert len({round(g["width"], 2) for g in glyphs}) > 1, glyphs  # tofu boxes share one width


@pytest.mark.media
async def test_hearing_page_in_tibetan(server: RunningServer) -> None:
    hearing = await server.create_hearing("judge:ཚེ་རིང་")
    url = hearing["invites"][0]["url"] + "&lang=bo"
    async with chromium() as browser:
        page = await browser.new_page()  # type: ignore[attr-defined]
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        responses = record_font_responses(page)
        await page.goto(url)
        await page.get_by_test_id("join-button").wait_for()
        assert await page.locator("#prejoin-heading").text_content() == "སྒྲིག་ཆས་ཞིབ་བཤེར"
        assert await page.get_by_test_id("join-button").text_content() == "ཁྲིམས་ཞིབ་ལ་ཞུགས"
        await assert_tibetan_page(page, "#prejoin-heading", responses)

        # in the hearing, as its judge: the controls the scripts label are Tibetan too
        await page.get_by_test_id("join-button").click()
        await page.wait_for_function(
            "document.querySelector('[data-testid=connection-state]').dataset.state === 'connected'",
            timeout=20000,
        )
        await page.get_by_test_id("end-hearing-button").wait_for()
        labels = await page.evaluate(VISIBLE_CONTROLS)
        assert len(labels) >= 4, labels
        assert all(TIBETAN.search(label) for label in labels), labels
        visible = await page.evaluate(VISIBLE_STRINGS)
        assert all(TIBETAN.search(s) for k, s in visible if k not in NAMES), visible
        assert not errors, errors


async def test_archive_page_in_tibetan(server: RunningServer) -> None:
    token = await issue_token(server, "archivist", subject="browser")
    async with chromium() as browser:
        page = await browser.new_page()  # type: ignore[attr-defined]
        responses = record_font_responses(page)
        await page.goto(f"{server.base_url}/archive?lang=bo#token={token}")
        await page.get_by_test_id("archive-search").wait_for()
        assert await page.locator("h1").text_content() == "བརྙན་ཟིན་ཡིག་ཚགས"
        await assert_tibetan_page(page, "h1", responses)


async def test_tibetan_is_chosen_and_remembered(server: RunningServer) -> None:
    """The switch offers བོད་ཡིག; the choice (from the switch or from ?lang=bo) outlives a reload."""
    async with chromium() as browser:
        page = await browser.new_page()  # type: ignore[attr-defined]
        await page.goto(f"{server.base_url}/")
        assert await page.evaluate("document.documentElement.lang") == "zh-CN"
        select = page.get_by_test_id("language-select")
        assert await select.locator("option").evaluate_all("os => os.map((o) => o.value)") == [
            "zh-CN",
            "en",
            "bo",
        ]
        await select.select_option("bo")
        assert await page.evaluate("document.documentElement.lang") == "bo"
        intro = page.locator("[data-i18n='landing.intro']")
        assert TIBETAN.search(await intro.text_content() or "")
        await page.reload()
        assert await page.evaluate("document.documentElement.lang") == "bo"
        assert await select.input_value() == "bo"

        other = await browser.new_page()  # type: ignore[attr-defined]
        await other.goto(f"{server.base_url}/?lang=en")
        await other.goto(f"{server.base_url}/archive?lang=bo-CN")  # a region tag finds bo too
        assert await other.evaluate("document.documentElement.lang") == "bo"
        await other.goto(f"{server.base_url}/hearing")
        assert await other.evaluate("document.documentElement.lang") == "bo"
        assert await other.evaluate("localStorage.getItem('tingshen.lang')") == "bo"


async def test_without_the_served_font_the_probe_fails(server: RunningServer) -> None:
    """The font blocked: the checks above would fail (on a machine with no Tibetan font, as tofu)."""
    async with chromium() as browser:
        page = await browser.new_page()  # type: ignore[attr-defined]
        await page.route(f"**{FONT_PATH}*", lambda route: route.abort())
        await page.goto(f"{server.base_url}/archive?lang=bo")
        await page.get_by_test_id("archive-sign-in").wait_for()
        await page.wait_for_function(f"({FONT_STATUS})().includes('error')", timeout=15000)
        fonts = await fonts_drawing(page, "h1")
        assert not any(f["isCustomFont"] for f in fonts), fonts
        if not system_has_tibetan_font():
            glyphs = await page.evaluate(GLYPH_PROBE)
            tofu = len({g["digest"] for g in glyphs}) == 1 or not any(g["ink"] for g in glyphs)
            assert tofu, glyphs


def system_has_tibetan_font() -> bool:
    if shutil.which("fc-list") is None:
        return True  # unknown: do not expect tofu
    listed = subprocess.run(["fc-list", ":lang=bo"], capture_output=True, text=True, check=False)
    return bool(listed.stdout.strip())
