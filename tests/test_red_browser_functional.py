"""Chromium negotiates the server's redundant audio (RED) and plays it (issue 7, audio first)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server import state
from terminal.client import HearingClient
from tests.browser import chromium
from tests.conftest import RunningServer
from tests.media import ToneTrack

pytestmark = [pytest.mark.browser, pytest.mark.media]

AUDIO_IN = """
async () => {
  const pc = window.tingshen && window.tingshen.pc;
  if (!pc) return null;
  const stats = await pc.getStats();
  const out = {samples: 0, concealed: 0, packets: 0, codecs: []};
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      out.samples += s.totalSamplesReceived || 0;
      out.concealed += s.concealedSamples || 0;
      out.packets += s.packetsReceived || 0;
      const codec = s.codecId && stats.get(s.codecId);
      if (codec) out.codecs.push(codec.mimeType);
    }
  });
  out.sdp = pc.remoteDescription ? pc.remoteDescription.sdp : '';
  out.answer = pc.localDescription ? pc.localDescription.sdp : '';
  return out;
}
"""


async def test_chromium_receives_red(server: RunningServer) -> None:
    server.settings.audio_redundancy = "always"
    hearing = await server.create_hearing("judge:审判长", "party:李四")
    judge_url, party_url = [i["url"] for i in hearing["invites"]]
    judge = HearingClient.from_invite(judge_url, tracks={"audio": ToneTrack()})
    judge_id = (await judge.join())["participant"]["id"]
    try:
        async with chromium() as browser:
            context = await browser.new_context()  # type: ignore[attr-defined]
            page = await context.new_page()
            await page.goto(party_url)
            await page.get_by_test_id("join-button").click()
            first: dict[str, Any] | None = None
            for _ in range(200):
                first = await page.evaluate(AUDIO_IN)
                if first and first["packets"] > 50:
                    break
                await asyncio.sleep(0.1)
            assert first and first["packets"] > 50, first
            # the server's side: the party's audio slot sends RED, two earlier packets deep
            live = server.app[state.SERVICES].live[hearing["id"]]
            slots = [
                slot
                for connection in live.connections.values()
                if connection.peer is not None
                for slot in connection.peer.slots
                if slot.kind == "audio" and slot.source is not None
            ]
            # (both ways: the aiortc judge's client takes RED too)
            assert [(s.red_pt is not None, s.redundancy.distance) for s in slots] == [(True, 2)] * 2
            sent_before = slots[0].packets
            await asyncio.sleep(3.0)
            last = await page.evaluate(AUDIO_IN)
            assert slots[0].packets - sent_before >= 100
            # and Chromium sends its microphone in RED (offered first on that m-line); the server
            # unwraps it before the forwarder and the recorder
            party_audio = next(
                stream
                for (pid, kind), stream in live.streams.items()
                if kind == "audio" and pid != judge_id
            )
            unwrapper = getattr(party_audio.receiver, "_tingshen_red", None)
            assert unwrapper is not None and unwrapper.red_packets >= 100, unwrapper
            assert unwrapper.malformed == 0
    finally:
        await judge.close()
    assert "red/48000/2" in first["sdp"]
    # Chromium kept RED in its answer, so the server sent RED ("always")
    assert "red/48000/2" in first["answer"], first["answer"]
    samples = last["samples"] - first["samples"]
    concealed = last["concealed"] - first["concealed"]
    print(f"\nChromium audio over 3 s: {samples} samples, {concealed} concealed, {last['codecs']}")
    # 3 s at 48 kHz, played from the RED payloads (were they unreadable, it would all be concealed)
    assert samples >= 0.8 * 3 * 48000, last
    assert concealed <= 0.05 * samples, last
