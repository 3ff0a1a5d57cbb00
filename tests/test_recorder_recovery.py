"""Crash recovery: kill -9 mid-recording, then salvage, account and re-sign (recorder.recovery)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import av
import pytest

from recorder.manifest import ManifestSigner, file_sha256
from recorder.recovery import RecoveryError, recover_recording
from recorder.session import RecordingSession
from recorder.synthetic import EncodedFrame, encode_audio, encode_video, interleave
from recorder.track import TrackInfo
from recorder.verify import verify_recording

REPO = Path(__file__).resolve().parents[1]
BASE = 1_760_000_000.0
VIDEO = TrackInfo("p3-video", "p3", "Defendant", "video", "VP8", 90000)
AUDIO = TrackInfo("p3-audio", "p3", "Defendant", "audio", "opus", 48000)
RATES = {VIDEO.track_id: 90000, AUDIO.track_id: 48000}

# Runs in a child process: records 5 s of media in a burst, then keeps one audio frame every 20 ms
# flowing (so no segment is closed for idleness) until it is killed.
CHILD = """
import pickle, sys, time
from pathlib import Path
from recorder.manifest import ManifestSigner
from recorder.session import RecordingSession
from recorder.synthetic import interleave
from recorder.track import TrackInfo

folder, key, media = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
tracks = pickle.loads(media.read_bytes())
session = RecordingSession(folder, "rec-k", "hearing-k", ManifestSigner.load_or_create(key))
session.start()
session.add_track(TrackInfo("p3-video", "p3", "Defendant", "video", "VP8", 90000))
session.add_track(TrackInfo("p3-audio", "p3", "Defendant", "audio", "opus", 48000))
session.event("join", {"participant": "p3"})
start = time.time()
rates = {"p3-video": 90000, "p3-audio": 48000}
for track_id, frame, seconds in interleave(tracks, rates):
    session.push_frame(track_id, frame.rtp_timestamp, frame.data, frame.keyframe, start + seconds)
print("pushed", flush=True)
audio = tracks["p3-audio"]
ts = audio[-1].rtp_timestamp
while True:
    for frame in audio:
        ts += 960
        session.push_frame("p3-audio", ts, frame.data, True, time.time())
        time.sleep(0.02)
"""


@pytest.fixture(scope="module")
def media() -> dict[str, list[EncodedFrame]]:
    return {
        VIDEO.track_id: encode_video(5.0, keyframe_interval=30),
        AUDIO.track_id: encode_audio(5.0),
    }


@pytest.fixture(scope="module")
def key_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys") / "signing_key.pem"


@pytest.fixture(scope="module")
def signer(key_path: Path) -> ManifestSigner:
    return ManifestSigner.load_or_create(key_path)


@pytest.fixture(scope="module")
def finished(
    tmp_path_factory: pytest.TempPathFactory,
    signer: ManifestSigner,
    media: dict[str, list[EncodedFrame]],
) -> Path:
    folder = tmp_path_factory.mktemp("finished") / "rec"
    session = RecordingSession(folder, "rec-f", "hearing-f", signer)
    session.start()
    session.add_track(VIDEO)
    session.add_track(AUDIO)
    for track_id, frame, seconds in interleave(media, RATES):
        session.push_frame(
            track_id, frame.rtp_timestamp, frame.data, frame.keyframe, BASE + seconds
        )
    session.stop()
    return folder


def manifest(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_bytes().splitlines()]


def status(folder: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((folder / "recording.json").read_bytes())
    return result


def as_crashed(finished: Path, tmp_path: Path, drop_lines: int = 1) -> Path:
    """A copy of a finished recording put back the way a crash leaves it: no end entry (and
    maybe fewer entries), status still "recording"."""
    folder = tmp_path / "rec"
    shutil.copytree(finished, folder)
    path = folder / "manifest.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-drop_lines]))
    document = status(folder)
    document["status"] = "recording"
    del document["ended_at"]
    (folder / "recording.json").write_text(json.dumps(document))
    return folder


def test_kill_9_mid_recording_then_recover(
    tmp_path: Path, key_path: Path, signer: ManifestSigner, media: dict[str, list[EncodedFrame]]
) -> None:
    folder = tmp_path / "rec"
    media_file = tmp_path / "media.pickle"
    media_file.write_bytes(pickle.dumps(media))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder), str(key_path), str(media_file)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "pushed\n"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # both tracks closed segments 0 and 1 (4 s)
            data = (folder / "manifest.jsonl").read_bytes()  # the child may be mid-line
            if data[: data.rfind(b"\n") + 1].count(b'"type":"segment"') >= 4:
                break
            time.sleep(0.01)
        time.sleep(0.3)  # some more live audio into the open segment, past a cluster boundary
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    parts = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.webm.part"))
    assert "p3-audio/000002.webm.part" in parts
    before = (folder / "manifest.jsonl").read_bytes()
    closed_files = {e["file"]: e["sha256"] for e in manifest(folder) if e["type"] == "segment"}

    report = verify_recording(folder, trusted_public_key=signer.public_key_pem())
    assert not report.ok and all(f.startswith("unrecovered-part") for f in report.faults)

    result = recover_recording(folder, signer)
    assert result.recovered and result.status == "interrupted"
    assert sorted(result.salvaged) == [p.removesuffix(".part") for p in parts]
    assert result.lost == [] and result.frames_salvaged > 0
    # everything closed before the crash is untouched and still verifies
    assert (folder / "manifest.jsonl").read_bytes().startswith(before)
    for name, sha256 in closed_files.items():
        assert file_sha256(folder / name)[0] == sha256
    report = verify_recording(folder, trusted_public_key=signer.public_key_pem())
    assert report.ok, report.faults
    assert report.status == "interrupted"
    document = status(folder)
    assert document["status"] == "interrupted" and document["interrupted_at"].endswith("Z")
    # the salvaged audio decodes, and holds the live frames pushed after the burst
    salvaged = next(e for e in manifest(folder) if e.get("file") == "p3-audio/000002.webm")
    assert salvaged["recovered"] == "salvaged" and salvaged["frames"] > 50
    assert salvaged["salvaged_from"]["file"] == "p3-audio/000002.webm.partial"
    with av.open(str(folder / salvaged["file"])) as container:
        samples = sum(f.samples for f in container.decode(audio=0))
    assert samples == salvaged["frames"] * 960
    end = manifest(folder)[-1]
    assert end["type"] == "end" and end["status"] == "interrupted" and end["events_lines"] == 1
    # nothing left to do the second time
    assert not recover_recording(folder, signer).recovered


def test_unreadable_open_segment_is_recorded_as_lost(
    finished: Path, tmp_path: Path, signer: ManifestSigner
) -> None:
    folder = as_crashed(finished, tmp_path)
    garbage = os.urandom(3000)
    (folder / "p3-video" / "000003.webm.part").write_bytes(garbage)
    result = recover_recording(folder, signer)
    assert result.lost == ["p3-video/000003.webm.partial"] and result.salvaged == []
    lost = next(e for e in manifest(folder) if e["type"] == "lost")
    assert lost["byte_range"] == [0, 3000] and lost["bytes"] == 3000
    assert lost["sha256"] == file_sha256(folder / "p3-video" / "000003.webm.partial")[0]
    assert lost["index"] == 3
    report = verify_recording(folder)
    assert report.ok, report.faults


def test_closed_but_unlisted_segment_is_adopted(
    finished: Path, tmp_path: Path, signer: ManifestSigner
) -> None:
    # the crash fell between the rename of the last audio segment and its manifest entry
    entries = manifest(finished)
    assert entries[-2]["type"] == "segment"
    folder = as_crashed(finished, tmp_path, drop_lines=2)
    result = recover_recording(folder, signer)
    assert result.adopted == [entries[-2]["file"]]
    adopted = next(e for e in manifest(folder) if e.get("recovered") == "adopted")
    assert adopted["sha256"] == entries[-2]["sha256"] and adopted["frames"] == entries[-2]["frames"]
    assert verify_recording(folder).ok


def test_half_written_manifest_line_is_cut(
    finished: Path, tmp_path: Path, signer: ManifestSigner
) -> None:
    folder = as_crashed(finished, tmp_path)
    with open(folder / "manifest.jsonl", "ab") as f:
        f.write(b'{"bytes":12,"clock"')
    with open(folder / "events.jsonl", "ab") as f:
        f.write(b'{"at":')
    result = recover_recording(folder, signer)
    assert result.manifest_bytes_dropped == 19 and result.events_bytes_dropped == 6
    assert verify_recording(folder).ok


def test_recovery_refuses_another_key_and_finished_recordings(
    finished: Path, tmp_path: Path, signer: ManifestSigner
) -> None:
    folder = as_crashed(finished, tmp_path)
    with pytest.raises(RecoveryError, match="another key"):
        recover_recording(folder, ManifestSigner.generate())
    result = recover_recording(finished, signer)
    assert not result.recovered and result.status == "complete"
