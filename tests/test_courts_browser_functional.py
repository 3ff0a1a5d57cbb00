"""The court a participant is at, on the hearing page's tiles, in headless Chromium.

A hearing of the intermediate court with a witness heard from Dege: the judge's page (in English)
names the witness's court under the witness's name; the witness's page says nothing under the
judge's name, who is at the hearing's own court. In a cross-court hearing or a meeting every tile
names its court.
"""

from __future__ import annotations

import pytest

from tests.browser import chromium, open_and_join, tile
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.media]


async def test_a_tile_names_another_courts_participant(server: RunningServer) -> None:
    hearing = await server.create_hearing("judge:审判长", "witness:证人@dege")
    (judge_url, witness_url) = [i["url"] for i in hearing["invites"]]
    errors: list[str] = []
    async with chromium() as browser:
        judge = await open_and_join(browser, judge_url + "&lang=en", "judge", errors)
        witness = await open_and_join(browser, witness_url, "witness", errors)
        await tile(judge, "证人").wait_for(timeout=20000)
        await tile(witness, "审判长").wait_for(timeout=20000)

        court = tile(judge, "证人").get_by_test_id("participant-court")
        await court.wait_for(state="visible", timeout=10000)
        assert await court.text_content() == "Dege County People's Court"
        label = await tile(judge, "证人").get_attribute("aria-label")
        assert label is not None and "Dege County People's Court" in label
        box = await court.bounding_box()
        name_box = await tile(judge, "证人").locator(".tile-name").bounding_box()
        assert box is not None and name_box is not None
        assert box["y"] >= name_box["y"] + name_box["height"] - 1  # under the name

        # the judge is at the hearing's own court: nothing under the name
        assert await tile(witness, "审判长").get_attribute("data-court") == "gz-zy"
        assert await tile(witness, "审判长").get_by_test_id("participant-court").is_hidden()

        # a language switch renames the court (names are data: the Chinese one in zh-CN)
        await judge.select_option("#language-select", "zh-CN")
        await judge.wait_for_function(
            """() => document.querySelector('[data-participant-name="证人"] '
                + '[data-testid="participant-court"]')?.textContent === "德格县人民法院" """,
            timeout=10000,
        )

        # cross-court hearings and meetings name every court, the hearing's own too
        rule = await witness.evaluate(
            """async () => {
                const { showsCourt } = await import("/static/js/tiles.js");
                const here = { court: "gz-zy" };
                return [
                    showsCourt(here, { court: "gz-zy", kind: "hearing" }),
                    showsCourt(here, { court: "gz-zy", kind: "cross-court" }),
                    showsCourt(here, { court: "gz-zy", kind: "meeting" }),
                    showsCourt({ court: "dege" }, { court: "gz-zy", kind: "hearing" }),
                    showsCourt({ court: "" }, { court: "gz-zy", kind: "meeting" }),
                ];
            }"""
        )
        assert rule == [False, True, True, True, False]
    assert errors == []
