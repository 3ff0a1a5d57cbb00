"""Composite render: a real recording in, one playable H.264/AAC file out (recorder.composite)."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from recorder import composite
from recorder.composite import (
    CARD_BGR,
    PAUSE_CARD_SECONDS,
    CompositeError,
    CompositeResult,
    _soft_clip,
    render_composite,
)
from recorder.manifest import ManifestSigner, parse_iso_utc
from recorder.overlay import (
    BANNER_BGR,
    Layout,
    TextPainter,
    clock_text,
    draw_clock,
    grid_layout,
    spotlight_layout,
)
from recorder.session import RecordingSession
from recorder.synthetic import EncodedFrame, encode_audio, encode_video, interleave
from recorder.track import TrackInfo
from recorder.verify import verify_recording

BASE = 1_764_309_780.0  # 2025-11-28 14:03:00 UTC+8
DELAY = 0.05  # network delay of every frame
B_JOINS, B_CAMERA_OFF, B_CAMERA_ON, END = 2.5, 4.0, 5.0, 6.0
W, H, FPS = 640, 360, 15
COURT, CASE = "甘孜州中级人民法院", "（2026）川33民初7号"
RED, BLUE = (200, 30, 30), (30, 30, 200)  # RGB
A_VIDEO = TrackInfo("a-video", "a", "审判长 张三", "video", "VP8", 90000)
A_AUDIO = TrackInfo("a-audio", "a", "审判长 张三", "audio", "opus", 48000)
B_VIDEO = TrackInfo("b-video", "b", "原告 李四", "video", "VP8", 90000)
B_AUDIO = TrackInfo("b-audio", "b", "原告 李四", "audio", "opus", 48000)
RATES = {t.track_id: t.clock_rate for t in (A_VIDEO, A_AUDIO, B_VIDEO, B_AUDIO)}


@dataclass
class Rendered:
    folder: Path
    signer: ManifestSigner
    result: CompositeResult
    origin: float  # wall clock of output time 0
    video: list[np.ndarray]  # decoded RGB frames
    audio: np.ndarray  # decoded mono samples, 48 kHz, index 0 = output time 0
    progress: list[float]


class FakeClock:
    def __init__(self) -> None:
        self.now = BASE

    def __call__(self) -> float:
        return self.now


def push(session: RecordingSession, tracks: dict[str, list[EncodedFrame]], at: float) -> None:
    """Push frames that the sender captured from wall time ``at`` on (RTP 0 at ``at``)."""
    for track_id, frame, seconds in interleave(tracks, RATES):
        arrival = at + seconds + DELAY
        session.push_frame(track_id, frame.rtp_timestamp, frame.data, frame.keyframe, arrival)


def shifted(frame: EncodedFrame, ticks: int) -> EncodedFrame:
    return EncodedFrame(frame.rtp_timestamp + ticks, frame.data, frame.keyframe)


def decode(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"
        video = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        chunks: list[np.ndarray] = []
        first: int | None = None
        for frame in container.decode(audio=0):
            assert frame.pts is not None and frame.sample_rate == 48000
            first = frame.pts if first is None else first
            chunks.append(frame.to_ndarray().mean(axis=0))
    assert first is not None and first <= 0
    return video, np.concatenate(chunks)[-first:]


def manifest(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_bytes().splitlines()]


def origin_of(folder: Path) -> float:
    return min(parse_iso_utc(e["start"]) for e in manifest(folder) if e["type"] == "segment")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """A 6 s hearing: A on camera throughout; B joins at 2.5 s, camera off 4-5 s; both beep."""
    folder = tmp_path_factory.mktemp("composite") / "rec"
    signer, clock = ManifestSigner.generate(), FakeClock()
    session = RecordingSession(folder, "rec-c", "hearing-c", signer, 2.0, clock=clock)
    session.start()
    for track in (A_VIDEO, A_AUDIO):
        session.add_track(track)
    push(
        session,
        {
            A_VIDEO.track_id: encode_video(END, color=RED, keyframe_interval=30),
            A_AUDIO.track_id: encode_audio(END),
        },
        BASE,
    )
    # Pushed after A's frames: the wall clock, not the order of arrival, places them.
    clock.now = BASE + B_JOINS
    for track in (B_VIDEO, B_AUDIO):
        session.add_track(track)
    push(
        session,
        {
            B_VIDEO.track_id: encode_video(B_CAMERA_OFF - B_JOINS, color=BLUE),
            B_AUDIO.track_id: encode_audio(END - B_JOINS),
        },
        BASE + B_JOINS,
    )
    clock.now = BASE + B_CAMERA_OFF
    session.remove_track(B_VIDEO.track_id)
    clock.now = BASE + B_CAMERA_ON
    session.add_track(B_VIDEO)
    push(session, {B_VIDEO.track_id: encode_video(END - B_CAMERA_ON, color=BLUE)}, clock.now)
    clock.now = BASE + END + DELAY
    session.stop()

    progress: list[float] = []
    result = render_composite(
        folder,
        court=COURT,
        case_number=CASE,
        signer=signer,
        fps=FPS,
        width=W,
        height=H,
        progress=progress.append,
    )
    video, audio = decode(result.path)
    return Rendered(folder, signer, result, origin_of(folder), video, audio, progress)


@pytest.fixture
def copy(rendered: Rendered, tmp_path: Path) -> Path:
    folder = tmp_path / "rec"
    shutil.copytree(rendered.folder, folder)
    return folder


def centre(frame: np.ndarray, layout: Layout, tile: int) -> np.ndarray:
    rect = layout.tiles[tile]
    return frame[rect.y + rect.h // 2, rect.x + rect.w // 2].astype(int)


def near(pixel: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 30) -> bool:
    return bool(np.abs(pixel - np.array(rgb)).max() < tolerance)


def expected_clock(layout: Layout, text: str) -> np.ndarray:
    expected = np.zeros((layout.height, layout.width, 3), np.uint8)
    layout.banner.view(expected)[:] = BANNER_BGR
    draw_clock(expected, layout, TextPainter.create(), text)
    return layout.clock.view(expected)[:, :, ::-1].astype(int)  # RGB, as decoded


def clock_distances(frame: np.ndarray, layout: Layout, *texts: str) -> list[float]:
    """Mean difference between a decoded frame's clock area and each text drawn there, over the
    pixels where the texts' drawings differ (the digits that tell them apart)."""
    drawn = [expected_clock(layout, text) for text in texts]
    differ = np.zeros(drawn[0].shape, bool)
    for other in drawn[1:]:
        differ |= np.abs(other - drawn[0]) > 30
    got = layout.clock.view(frame).astype(int)
    if not differ.any():
        differ[:] = True
    return [float(np.abs(got - d)[differ].mean()) for d in drawn]


def test_composite_is_one_playable_file_of_the_recorded_span(rendered: Rendered) -> None:
    result = rendered.result
    assert result.path == rendered.folder / "composite.mp4"
    assert result.duration_s == pytest.approx(END, abs=0.1)
    assert len(rendered.video) == result.frames == round(result.duration_s * FPS)
    assert rendered.video[0].shape == (H, W, 3)
    assert len(rendered.audio) / 48000 == pytest.approx(result.duration_s, abs=0.05)
    assert result.tracks_used == ["a-audio", "a-video", "b-audio", "b-video"]
    assert result.bytes == result.path.stat().st_size
    assert rendered.progress[-1] == 1.0 and rendered.progress == sorted(rendered.progress)


def test_each_participant_is_in_their_tile_when_on_camera(rendered: Rendered) -> None:
    layout = grid_layout(W, H, 2)
    # Output frame n shows wall time origin + n / FPS; stay clear of the white flash each second.
    for t, b_on_camera in ((1.27, False), (3.27, True), (4.6, False), (5.6, True)):
        frame = rendered.video[round(t * FPS)]
        assert near(centre(frame, layout, 0), RED), t
        if b_on_camera:
            assert near(centre(frame, layout, 1), BLUE), t
        else:
            assert centre(frame, layout, 1).max() < 40, t  # black tile: B not on camera


def test_tiles_carry_the_names_and_banner_the_court(rendered: Rendered) -> None:
    layout = grid_layout(W, H, 2)
    frame = rendered.video[round(1.27 * FPS)]
    for tile in layout.tiles:  # the name box sits at the tile's bottom-left
        corner = frame[tile.y + tile.h - 30 : tile.y + tile.h, tile.x : tile.x + tile.w // 3]
        assert corner.max() > 200, "no name drawn"
    title = layout.title.view(frame)
    assert (title.max(axis=2) > 200).sum() > 200, "no court / case number drawn"


def test_clock_overlay_shows_the_wall_time_each_second(rendered: Rendered) -> None:
    layout = grid_layout(W, H, 2)
    for t in (0.5, 1.5, 4.5):
        n = round(t * FPS)
        wall = rendered.origin + n / FPS
        frame = rendered.video[n]
        right, early, late = clock_distances(
            frame, layout, clock_text(wall), clock_text(wall - 1), clock_text(wall + 1)
        )
        assert right < 15 and early > 2 * right + 20 and late > 2 * right + 20, (t, right)
        assert clock_text(wall).endswith("UTC+8") and clock_text(BASE) == (
            "2025-11-28 14:03:00 UTC+8"
        )
    one, two = (layout.clock.view(rendered.video[round(t * FPS)]) for t in (1.5, 2.5))
    assert np.abs(one.astype(int) - two.astype(int)).max() > 100  # the second ticked


def rms(audio: np.ndarray, t0: float, t1: float) -> float:
    part = audio[round(t0 * 48000) : round(t1 * 48000)]
    return float(np.sqrt(np.mean(part**2)))


def test_audio_mixes_both_participants_on_the_wall_clock(rendered: Rendered) -> None:
    audio = rendered.audio
    a_beeps = [float(k) for k in range(6)]
    b_beeps = [B_JOINS + k for k in range(4)]  # B's own beeps, half a second after A's
    for t in a_beeps + b_beeps:
        assert rms(audio, t + 0.02, t + 0.08) > 0.1, t
    for t in (0.3, 1.3, 2.3, 3.2, 3.7, 5.2, 5.7):
        assert rms(audio, t, t + 0.15) < 0.01, t


def test_soft_clip_keeps_a_loud_mix_bounded() -> None:
    mix = np.array([[0.5, 0.9 + 0.9, -1.7, 0.1]], np.float32)
    clipped = _soft_clip(mix.copy())
    assert np.abs(clipped).max() <= 1.0
    assert clipped[0, 0] == 0.5 and clipped[0, 3] == pytest.approx(0.1)
    assert clipped[0, 1] > 0.95 and clipped[0, 2] < -0.95


def test_derived_entry_is_chained_after_the_end_and_verifies(rendered: Rendered) -> None:
    entries = manifest(rendered.folder)
    assert [e["type"] for e in entries[-2:]] == ["end", "derived"]
    derived = entries[-1]
    assert derived["kind"] == "composite" and derived["file"] == "composite.mp4"
    assert derived["sha256"] == rendered.result.sha256
    assert derived["bytes"] == rendered.result.bytes
    assert derived["court"] == COURT and derived["case_number"] == CASE
    assert parse_iso_utc(derived["created"]) > 0
    report = verify_recording(rendered.folder, trusted_public_key=rendered.signer.public_key_pem())
    assert report.ok, report.faults
    assert report.status == "complete"


def test_modified_or_missing_composite_is_a_fault(copy: Path) -> None:
    target = copy / "composite.mp4"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    report = verify_recording(copy)
    assert [f.split(":")[:2] for f in report.faults] == [["derived-modified", " composite.mp4"]]
    target.unlink()
    report = verify_recording(copy)
    assert report.faults == [
        "derived-missing: composite.mp4: derived file listed in the manifest is gone"
    ]


def test_rendering_again_refuses_to_replace_a_listed_composite(
    copy: Path, rendered: Rendered, tmp_path: Path
) -> None:
    with pytest.raises(CompositeError, match="already listed"):
        render_composite(copy, court=COURT, case_number=CASE, signer=rendered.signer)
    with pytest.raises(ValueError, match="outside"):
        render_composite(
            copy, tmp_path / "x.mp4", court=COURT, case_number=CASE, signer=rendered.signer
        )
    before = (copy / "manifest.jsonl").read_bytes()
    preview = render_composite(
        copy, tmp_path / "preview.mp4", court=COURT, case_number=CASE, width=320, height=180
    )
    assert preview.path.is_file() and preview.frames == rendered.result.frames
    assert (copy / "manifest.jsonl").read_bytes() == before  # no signer: nothing listed


def test_raising_from_progress_cancels_and_leaves_nothing(copy: Path) -> None:
    def cancel(fraction: float) -> None:
        if fraction > 0.3:
            raise KeyboardInterrupt  # what a job runner's cancel may look like

    with pytest.raises(KeyboardInterrupt):
        render_composite(
            copy, copy / "cancelled.mp4", court=COURT, case_number=CASE, progress=cancel
        )
    assert not list(copy.glob("cancelled*"))


def test_a_recording_that_does_not_verify_is_not_rendered(copy: Path) -> None:
    segment = copy / next(e["file"] for e in manifest(copy) if e["type"] == "segment")
    segment.write_bytes(segment.read_bytes()[:-1] + b"\x00")
    with pytest.raises(CompositeError, match="segment-modified"):
        render_composite(copy, copy / "again.mp4", court=COURT, case_number=CASE)
    assert not (copy / "again.mp4").exists() and not (copy / "again.mp4.part").exists()


def test_a_pause_is_a_title_card_and_the_clock_jumps(tmp_path: Path) -> None:
    folder, signer, clock = tmp_path / "rec", ManifestSigner.generate(), FakeClock()
    session = RecordingSession(folder, "rec-p", "hearing-p", signer, 2.0, clock=clock)
    session.start()
    session.add_track(A_VIDEO)
    session.add_track(A_AUDIO)
    video = encode_video(4.0, color=RED, keyframe_interval=30)
    audio = encode_audio(4.0)
    push(session, {A_VIDEO.track_id: video[:60], A_AUDIO.track_id: audio[:100]}, BASE)
    clock.now = BASE + 2.0 + DELAY
    session.pause("recess", "judge-1")
    clock.now += 60.0  # a one-minute recess: nothing is recorded
    session.resume("judge-1")
    # The senders' RTP clocks ran on through the recess.
    later = {
        A_VIDEO.track_id: [shifted(f, 60 * 90000) for f in video[60:]],
        A_AUDIO.track_id: [shifted(f, 60 * 48000) for f in audio[100:]],
    }
    push(session, later, BASE)
    clock.now = BASE + 64.0 + DELAY
    session.stop()

    result = render_composite(
        folder, court=COURT, case_number=CASE, signer=signer, fps=FPS, width=W, height=H
    )
    assert result.duration_s == pytest.approx(2.0 + PAUSE_CARD_SECONDS + 2.0, abs=0.1)
    frames, sound = decode(result.path)
    layout = grid_layout(W, H, 1)
    origin = origin_of(folder)
    before, card, after = (frames[round(t * FPS)] for t in (1.5, 3.5, 6.5))
    assert near(centre(before, layout, 0), RED) and near(centre(after, layout, 0), RED)
    assert near(card[H - 10, 10].astype(int), CARD_BGR[::-1], 12)  # the card, not the grid
    assert (card[H // 3 : 2 * H // 3].max(axis=2) > 200).sum() > 500  # its text
    gap = next(e for e in manifest(folder) if e["type"] == "gap")
    assert gap["reason"] == "recess"
    # after the card, the burned-in clock runs on from the end of the pause
    n = round(6.5 * FPS)
    wall = parse_iso_utc(gap["end"]) + n / FPS - (2.0 + PAUSE_CARD_SECONDS)
    right, unpaused = clock_distances(after, layout, clock_text(wall), clock_text(origin + n / FPS))
    assert right < 15 and unpaused > 2 * right + 20
    assert rms(sound, 2.0 + 0.5, 2.0 + PAUSE_CARD_SECONDS - 0.5) < 0.005  # silent card
    assert rms(sound, 5.02, 5.08) > 0.1  # the first beep after the recess
    assert verify_recording(folder, trusted_public_key=signer.public_key_pem()).ok


def test_without_libx264_the_composite_is_vp8_and_opus_in_webm(
    copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(composite, "ENCODINGS", composite.ENCODINGS[1:])
    result = render_composite(copy, court=COURT, case_number=CASE, width=320, height=180)
    assert result.path == copy / "composite.webm"
    with av.open(str(result.path)) as container:
        assert container.streams.video[0].codec_context.name == "vp8"
        assert container.streams.audio[0].codec_context.name == "opus"
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == result.frames and result.duration_s == pytest.approx(END, abs=0.1)


# -- the spotlight ------------------------------------------------------------------------------

GREEN = (30, 200, 30)  # RGB
GOLD = composite.SPOTLIGHT_BGR[::-1]  # RGB
TASHI = "证人 བཀྲ་ཤིས། (扎西)"  # a witness with a Tibetan name (and its Chinese transcription)
PEOPLE = [  # participant, name, colour: one camera each
    ("a", "审判长 张三", RED),
    ("b", "原告 李四", BLUE),
    ("c", TASHI, GREEN),
]
ON_B, ON_C, CLEARED = 1.9, 3.5, 4.9  # seconds after BASE: the judge's spotlight changes


@dataclass
class Spotlit:
    folder: Path
    origin: float
    video: list[np.ndarray]


@pytest.fixture(scope="module")
def spotlit(tmp_path_factory: pytest.TempPathFactory) -> Spotlit:
    """A 6 s hearing of three cameras; the judge spotlights B, then C, then clears it."""
    folder = tmp_path_factory.mktemp("spotlight") / "rec"
    signer, clock = ManifestSigner.generate(), FakeClock()
    session = RecordingSession(folder, "rec-s", "hearing-s", signer, 2.0, clock=clock)
    session.start()
    frames: dict[str, list[EncodedFrame]] = {}
    for participant, name, color in PEOPLE:
        session.add_track(
            TrackInfo(f"{participant}-video", participant, name, "video", "VP8", 90000)
        )
        session.event("join", {"participant": participant, "name": name, "role": "party"})
        frames[f"{participant}-video"] = encode_video(END, color=color, keyframe_interval=30)
    for track_id, frame, seconds in interleave(frames, dict.fromkeys(frames, 90000)):
        arrival = BASE + seconds + DELAY
        session.push_frame(track_id, frame.rtp_timestamp, frame.data, frame.keyframe, arrival)
    changes: list[tuple[float, str | None, str | None]] = [
        (ON_B, "b", "原告 李四"),
        (ON_C, "c", TASHI),
        (CLEARED, None, None),
    ]
    for at, whom, whose in changes:
        data = {"participant": whom, "name": whose, "by": "a", "byName": "审判长 张三"}
        session.event("spotlight", data, at=BASE + at)
    clock.now = BASE + END + DELAY
    session.stop()
    result = render_composite(
        folder, court=COURT, case_number=CASE, signer=signer, fps=FPS, width=W, height=H
    )
    video, _ = decode(result.path)
    return Spotlit(folder, origin_of(folder), video)


def colours(frame: np.ndarray, layout: Layout) -> list[tuple[int, int, int] | None]:
    """The colour of each participant's picture in ``layout``'s tiles (by its centre), or None."""
    found: list[tuple[int, int, int] | None] = []
    for tile in range(len(layout.tiles)):
        pixel = centre(frame, layout, tile)
        found.append(next((rgb for _, _, rgb in PEOPLE if near(pixel, rgb)), None))
    return found


def painted(frame: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    return np.abs(frame.astype(int) - np.array(rgb)).max(axis=2) < 30


GRID = grid_layout(W, H, 3)
ON = {whom: spotlight_layout(W, H, 3, [n]) for n, (whom, _, _) in enumerate(PEOPLE)}


def test_the_spotlighted_participant_is_the_main_tile_until_cleared(spotlit: Spotlit) -> None:
    expected = [RED, BLUE, GREEN]
    for t, layout in ((1.5, GRID), (2.5, ON["b"]), (3.2, ON["b"]), (4.2, ON["c"]), (5.6, GRID)):
        frame = spotlit.video[round(t * FPS)]
        assert colours(frame, layout) == expected, t
    # in the spotlight, the main tile across the top holds the spotlighted participant's picture
    # at its largest; the others are small beneath it
    grid, spot = (spotlit.video[round(t * FPS)] for t in (1.5, 2.5))
    main = ON["b"].tiles[1]
    blue = painted(spot, BLUE)
    rows, cols = np.nonzero(blue)
    assert main.y <= rows.min() and rows.max() < main.y + main.h
    assert main.x <= cols.min() and cols.max() < main.x + main.w
    shown = min(main.w / 320, main.h / 240)  # the 320x240 camera, fitted, aspect kept
    assert blue.sum() > 0.9 * (320 * shown) * (240 * shown)
    assert blue.sum() > 2 * painted(grid, BLUE).sum()  # 320x240 now, 212x160 in the grid
    assert painted(spot, RED).sum() < 0.5 * painted(grid, RED).sum()  # A: small now
    for tile in (ON["b"].tiles[0], ON["b"].tiles[2]):
        assert tile.y > main.y + main.h and tile.h < main.h / 2.5
    # ringed in gold, as on the hearing page (2 rows above the tile: clear of the chroma of both)
    ring = spot[main.y - 2, main.x + main.w // 2].astype(int)
    assert near(ring, GOLD, 40), ring
    assert not near(grid[main.y - 2, main.x + main.w // 2].astype(int), GOLD, 40)


def test_the_layout_changes_at_the_events_instant(spotlit: Spotlit) -> None:
    expected = [RED, BLUE, GREEN]
    for at, before, after in (
        (ON_B, GRID, ON["b"]),
        (ON_C, ON["b"], ON["c"]),
        (CLEARED, ON["c"], GRID),
    ):
        first = math.ceil((BASE + at - spotlit.origin) * FPS)  # first output frame at or after it
        assert colours(spotlit.video[first - 1], before) == expected, at
        assert colours(spotlit.video[first], after) == expected, at


def test_a_tibetan_name_is_drawn_in_its_tile_not_as_boxes(spotlit: Spotlit) -> None:
    n = round(1.5 * FPS)
    tile = GRID.tiles[2]  # C's, in the grid
    box = (slice(tile.y + tile.h - 40, tile.y + tile.h), slice(tile.x, tile.x + tile.w))

    def ink(image: np.ndarray) -> np.ndarray:
        return image[box].min(axis=2) > 128  # white text, on any picture (any channel order)

    def drawn(painter: TextPainter) -> np.ndarray:
        labels, owners = [name for _, name, _ in PEOPLE], [p for p, _, _ in PEOPLE]
        compositor = composite._Compositor(W, H, painter, labels, owners, COURT, CASE)
        return ink(compositor.frame(compositor.view(None), spotlit.origin, [None] * 3))

    def overlap(a: np.ndarray, b: np.ndarray) -> float:
        return float((a & b).sum() / max(1, (a | b).sum()))

    painter = TextPainter.create()
    assert painter.tibetan is not None
    rendered, expected = ink(spotlit.video[n]), drawn(painter)
    boxes = drawn(TextPainter(painter.face))  # the same name in the CJK font alone: tofu
    assert expected.sum() > 100 and not np.array_equal(expected, boxes)
    assert overlap(rendered, expected) > 0.6  # measured 0.85 (H.264 blurs 12-pixel text)
    assert overlap(rendered, boxes) < 0.3  # measured 0.06


def test_spotlight_events_are_read_in_time_order_and_odd_lines_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = [
        {"seq": 0, "at": "2025-11-28T06:03:05.000000Z", "t": BASE + 5, "kind": "join", "data": {}},
        {"seq": 1, "t": BASE + 9, "kind": "spotlight", "data": {"participant": None}},
        {"seq": 2, "t": BASE + 2, "kind": "spotlight", "data": {"participant": "b"}},
        {"seq": 3, "at": "2025-11-28T06:03:07Z", "kind": "spotlight", "data": {"participant": "c"}},
        {"seq": 4, "t": BASE + 3, "kind": "spotlight", "data": {"participant": 5}},
        {"seq": 5, "t": BASE + 4, "kind": "spotlight", "data": {"by": "a"}},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + '\n{"seq": 6, "t": 17'  # cut off
    (tmp_path / "events.jsonl").write_text(text)
    with caplog.at_level("WARNING", logger="recorder.composite"):
        spotlight = composite.Spotlight.read(tmp_path)
    assert len(spotlight) == 3  # the participant 5 and the event naming no one are skipped
    assert caplog.text.count("spotlight event not understood") == 2
    assert [spotlight.at(BASE + t) for t in (0, 2, 6.9, 7, 8.99, 9, 60)] == [
        None, "b", "b", "c", "c", None, None
    ]  # fmt: skip
    assert len(composite.Spotlight.read(tmp_path / "nothing-here")) == 0


def test_a_spotlight_on_someone_without_a_tile_keeps_the_grid_and_two_tracks_are_main() -> None:
    labels, owners = ["A", "B camera", "B screen", "C"], ["a", "b", "b", "c"]
    compositor = composite._Compositor(W, H, TextPainter.create(), labels, owners, COURT, CASE)
    assert (
        compositor.view("observer").layout == compositor.view(None).layout == grid_layout(W, H, 4)
    )
    both = compositor.view("b").layout
    assert both == spotlight_layout(W, H, 4, [1, 2]) and both.main == (1, 2)
    assert compositor.view("b") is compositor.view("b")  # drawn once, kept
