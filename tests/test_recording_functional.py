"""Every hearing recorded: real clients through a real server, then the files on disk are checked."""

from __future__ import annotations

import asyncio
import datetime as dt
import fractions
import json
import math
import time
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack
from av import AudioFrame, VideoFrame

from recorder.verify import verify_recording
from terminal.client import HearingClient
from tests.conftest import RunningServer
from tests.media import ColourTrack, ToneTrack

pytestmark = pytest.mark.media

FPS = 30


class FlashTrack(MediaStreamTrack):
    """Grey picture that is white for the first frame after every whole second of `epoch`."""

    kind = "video"

    def __init__(self, epoch: float) -> None:
        super().__init__()
        self.epoch = epoch
        self.n = 0
        self.grey = np.full((240, 320, 3), 60, np.uint8)
        self.white = np.full((240, 320, 3), 250, np.uint8)

    async def recv(self) -> VideoFrame:
        target = self.epoch + self.n / FPS
        delay = target - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        image = self.white if self.n % FPS == 0 else self.grey
        frame = VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = self.n * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        self.n += 1
        return frame


class BeepTrack(MediaStreamTrack):
    """Silence with a 1 kHz beep for the first 100 ms after every whole second of `epoch`."""

    kind = "audio"

    def __init__(self, epoch: float) -> None:
        super().__init__()
        self.epoch = epoch
        self.samples = 0

    async def recv(self) -> AudioFrame:
        rate, n = 48000, 960
        delay = self.epoch + self.samples / rate - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        t = (np.arange(n) + self.samples) / rate
        beep = (t % 1.0) < 0.1
        pcm = (np.sin(2 * math.pi * 1000 * t) * 12000 * beep).astype(np.int16).reshape(1, -1)
        frame = AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = self.samples
        frame.time_base = fractions.Fraction(1, rate)
        self.samples += n
        return frame


def manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def wall(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def flash_times(folder: Path, track_id: str) -> list[float]:
    times = []
    for entry in manifest(folder):
        if entry.get("type") == "segment" and entry["track_id"] == track_id:
            start = wall(entry["start"])
            with av.open(str(folder / entry["file"])) as container:
                first = None
                for frame in container.decode(video=0):
                    t = float((frame.pts or 0) * (frame.time_base or 0))
                    first = t if first is None else first
                    if frame.to_ndarray(format="gray").mean() > 200:
                        times.append(start + t - first)
    return times


def beep_times(folder: Path, track_id: str) -> list[float]:
    times = []
    for entry in manifest(folder):
        if entry.get("type") == "segment" and entry["track_id"] == track_id:
            start = wall(entry["start"])
            with av.open(str(folder / entry["file"])) as container:
                first = None
                loud = False
                for frame in container.decode(audio=0):
                    t = float((frame.pts or 0) * (frame.time_base or 0))
                    first = t if first is None else first
                    samples = frame.to_ndarray().astype(np.float64)
                    channels = len(frame.layout.channels)
                    # first channel only (planar: row 0; packed: every n-th sample)
                    pcm = samples[0] if frame.format.is_planar else samples.reshape(-1)[::channels]
                    chunk = 240  # 5 ms
                    for i in range(0, len(pcm) - chunk + 1, chunk):
                        rms = math.sqrt(float(np.mean(pcm[i : i + chunk] ** 2)))
                        is_loud = rms > (0.05 if frame.format.name.startswith("flt") else 1500)
                        if is_loud and not loud:
                            times.append(start + t - first + (i / chunk) * 0.005)
                        loud = is_loud
    return times


async def test_hearing_is_recorded_verified_and_in_sync(server: RunningServer) -> None:
    server.settings.render_after_hearing = True
    hearing = await server.create_hearing("judge:审判长", "party:甲")
    epoch = math.floor(time.time()) + 1.0
    judge = HearingClient.from_invite(
        hearing["invites"][0]["url"], tracks={"video": FlashTrack(epoch), "audio": BeepTrack(epoch)}
    )
    party = HearingClient.from_invite(
        hearing["invites"][1]["url"],
        tracks={"video": ColourTrack((0, 0, 200)), "audio": ToneTrack()},
    )
    judge_id = (await judge.join())["participant"]["id"]
    await party.join()
    await asyncio.sleep(7)
    await judge.close()
    await party.close()
    status, _ = await server.api("POST", f"/api/hearings/{hearing['id']}/end")
    assert status == 200

    (folder,) = (server.settings.recordings_dir / hearing["id"]).iterdir()
    report = verify_recording(folder)
    assert report.ok, report.faults
    assert json.loads((folder / "recording.json").read_text())["status"] == "complete"
    entries = manifest(folder)
    tracks = {e["track_id"]: e for e in entries if e.get("type") == "track"}
    assert len(tracks) == 4  # two participants x audio + video
    segments = [e for e in entries if e.get("type") == "segment"]
    assert len(segments) >= 8  # ~2 s segments over ~6 s, per track
    events = [json.loads(x) for x in (folder / "events.jsonl").read_text().splitlines()]
    kinds = [e.get("kind") for e in events]
    assert kinds.count("join") == 2 and kinds.count("leave") == 2

    flashes = flash_times(folder, f"{judge_id}-video")
    beeps = beep_times(folder, f"{judge_id}-audio")
    assert len(flashes) >= 4 and len(beeps) >= 4, (flashes, beeps)
    # pair each flash with the beep of the same second of the sources' shared clock
    beep_of = {round(b - epoch): b for b in reversed(beeps)}  # earliest onset per second
    pairs = [beep_of[round(f - epoch)] - f for f in flashes if round(f - epoch) in beep_of]
    print(f"A/V offsets (beep - flash), ms: {[round(p * 1000) for p in pairs]}")
    assert len(pairs) >= 4
    assert all(abs(p) <= 0.100 for p in pairs), pairs
    # the flashes are one second apart on the recording's wall clock
    gaps = np.diff(sorted(flashes))
    assert all(abs(g - 1.0) < 0.1 for g in gaps), gaps

    # the composite is rendered in the background and signed into the manifest
    for _ in range(240):
        if any(e.get("type") == "derived" for e in manifest(folder)):
            break
        await asyncio.sleep(0.25)
    derived = [e for e in manifest(folder) if e.get("type") == "derived"]
    assert [d["file"] for d in derived] == ["composite.mp4"], derived
    report = verify_recording(folder)
    assert report.ok, report.faults
    with av.open(str(folder / "composite.mp4")) as container:
        assert container.streams.video and container.streams.audio
        assert float(container.duration or 0) / 1e6 > 4


async def test_only_the_judge_pauses_only_for_a_lawful_reason(server: RunningServer) -> None:
    hearing = await server.create_hearing("judge:审判长", "party:甲")
    judge = HearingClient.from_invite(
        hearing["invites"][0]["url"], tracks={"video": ColourTrack((0, 150, 0))}
    )
    party = HearingClient.from_invite(hearing["invites"][1]["url"], tracks={"audio": ToneTrack()})
    await judge.join()
    await party.join()
    try:
        await asyncio.sleep(3)
        await party.send({"type": "pause", "reason": "recess"})
        error = await party.next_message("error")
        assert error["code"] == "forbidden"
        await judge.send({"type": "pause", "reason": "lunch"})
        error = await judge.next_message("error")
        assert error["code"] == "bad-message" and "recess" in error["message"]
        await judge.send({"type": "pause", "reason": "recess"})
        state = await party.next_message("hearing-state")
        assert state == {"type": "hearing-state", "state": "paused", "pauseReason": "recess"}
        await asyncio.sleep(2)
        await judge.send({"type": "resume"})
        state = await party.next_message("hearing-state")
        assert state["state"] == "open"
        await asyncio.sleep(3)
    finally:
        await judge.close()
        await party.close()
    status, _ = await server.api("POST", f"/api/hearings/{hearing['id']}/end")
    assert status == 200
    (folder,) = (server.settings.recordings_dir / hearing["id"]).iterdir()
    report = verify_recording(folder)
    assert report.ok, report.faults
    gaps = [e for e in manifest(folder) if e.get("type") == "gap"]
    assert len(gaps) == 1, gaps
    assert gaps[0]["reason"] == "recess" and "审判长" in json.dumps(gaps[0], ensure_ascii=False)
    span = wall(gaps[0]["end"]) - wall(gaps[0]["start"])
    assert 1.5 < span < 4, gaps[0]
    # nothing was recorded inside the gap (frames in flight at the resume carry their capture
    # time, which may precede the resume by the network and jitter-buffer delay)
    for e in manifest(folder):
        if e.get("type") == "segment":
            assert not (
                wall(gaps[0]["start"]) + 0.5 < wall(e["start"]) < wall(gaps[0]["end"]) - 0.5
            )
