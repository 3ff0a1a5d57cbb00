"""The floor in a prefecture meeting, on the hearing page, in headless Chromium.

The county court (a party) asks for the floor; the chair (the judge) sees a give-floor button for it,
gives the floor, and both pages mark the county court's tile (or own controls) accordingly.
"""

from __future__ import annotations

import pytest

from tests.browser import chromium, open_and_join, tile
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.media]


async def test_request_and_give_floor(server: RunningServer) -> None:
    hearing = await server.create_hearing("judge:州中院", "party:石渠县法院", kind="meeting")
    (judge_url, party_url) = [i["url"] for i in hearing["invites"]]
    errors: list[str] = []
    async with chromium() as browser:
        judge = await open_and_join(browser, judge_url, "judge", errors)
        party = await open_and_join(browser, party_url, "party", errors)
        await tile(judge, "石渠县法院").wait_for(timeout=20000)
        await tile(party, "州中院").wait_for(timeout=20000)

        # the chair does not ask for the floor; the county court does
        assert await judge.get_by_test_id("request-floor-button").is_hidden()
        assert await party.get_by_test_id("give-floor-button").count() == 0
        request = party.get_by_test_id("request-floor-button")
        await request.click()

        give = judge.locator(
            '[data-testid="give-floor-button"][data-participant-name="石渠县法院"]'
        )
        await give.wait_for(timeout=10000)
        assert await judge.get_by_test_id("take-floor-button").is_hidden()
        await give.click()

        holder = tile(judge, "石渠县法院")
        await judge.wait_for_function(
            """() => document.querySelector(
                '[data-testid="participant-tile"][data-participant-name="石渠县法院"]'
            )?.dataset.hasFloor === "true" """,
            timeout=10000,
        )
        assert await holder.get_by_test_id("participant-has-floor").is_visible()
        await give.wait_for(state="detached", timeout=10000)
        assert await judge.get_by_test_id("take-floor-button").is_visible()
        # the party's own controls say it has the floor
        await party.wait_for_function(
            "() => window.tingshen.floor.holder === window.tingshen.self.id", timeout=10000
        )
        assert await request.is_disabled()
    assert errors == []
