"""The spotlight on the hearing page, in headless Chromium.

The presiding judge clicks the spotlight button on the witness's tile; the party's page then shows the
witness as the main tile (first, across the stage, larger than the others), the witness's own page says
everyone sees it large, and a second click on the same button clears it again.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser import chromium
from tests.conftest import RunningServer
from tests.test_floor_browser_functional import open_and_join, tile

pytestmark = [pytest.mark.browser, pytest.mark.media]

WITNESS = "证人王某"
JUDGE = "审判长"


async def area(locator: Any) -> float:
    box = await locator.bounding_box()
    assert box is not None
    return float(box["width"] * box["height"])


async def main_tile(page: Any, name: str | None) -> None:
    """Wait until `name`'s tile is the main tile (None: until there is no main tile)."""
    await page.wait_for_function(
        """(name) => {
            const grid = document.querySelector('[data-testid="participant-grid"]');
            const main = grid.querySelector('[data-testid="participant-tile"][data-spotlight="true"]');
            if (name === null) return grid.dataset.spotlight === "false" && main === null;
            return grid.dataset.spotlight === "true" && main?.dataset.participantName === name;
        }""",
        arg=name,
        timeout=10000,
    )


async def test_the_judge_spotlights_a_witness_for_everyone(server: RunningServer) -> None:
    hearing = await server.create_hearing(f"judge:{JUDGE}", f"witness:{WITNESS}", "party:甲")
    (judge_url, witness_url, party_url) = [i["url"] for i in hearing["invites"]]
    errors: list[str] = []
    async with chromium() as browser:
        judge = await open_and_join(browser, judge_url, "judge", errors)
        witness = await open_and_join(browser, witness_url, "witness", errors)
        party = await open_and_join(browser, party_url, "party", errors)
        for page, names in ((judge, (WITNESS, "甲")), (party, (JUDGE, WITNESS))):
            for name in names:
                await tile(page, name).wait_for(timeout=20000)

        # the button is the judge's: the others' tiles have none to click
        assert await party.get_by_test_id("spotlight-button").first.is_hidden()
        button = tile(judge, WITNESS).get_by_test_id("spotlight-button")
        assert await button.get_attribute("aria-pressed") == "false"
        await button.click()

        await main_tile(party, WITNESS)
        await main_tile(judge, WITNESS)
        assert await button.get_attribute("aria-pressed") == "true"
        main, other = tile(party, WITNESS), tile(party, JUDGE)
        assert await main.get_by_test_id("participant-spotlighted").is_visible()
        assert await other.get_by_test_id("participant-spotlighted").is_hidden()
        # the main tile is the large one, above the others
        assert await area(main) > 2 * await area(other)
        main_box, other_box = await main.bounding_box(), await other.bounding_box()
        assert main_box["y"] + main_box["height"] <= other_box["y"] + 1
        await witness.get_by_test_id("self-spotlighted").wait_for(state="visible", timeout=10000)
        witness_id = await witness.evaluate("window.tingshen.self.id")
        assert await party.evaluate("window.tingshen.spotlight") == witness_id
        assert await party.get_by_test_id("self-spotlighted").is_hidden()

        # a second click clears it for everyone
        await button.click()
        await main_tile(party, None)
        await witness.get_by_test_id("self-spotlighted").wait_for(state="hidden", timeout=10000)
        assert await button.get_attribute("aria-pressed") == "false"
    assert errors == []
