"""Offline verification: a clean recording passes, each kind of tampering is named (recorder.verify)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from recorder.manifest import (
    ManifestSigner,
    ManifestWriter,
    file_sha256,
    iso_utc,
    parse_iso_utc,
)
from recorder.session import RecordingSession
from recorder.synthetic import encode_audio, encode_video, interleave
from recorder.track import TrackInfo
from recorder.verify import VerifyReport, verify_recording

BASE = 1_760_000_000.0
VIDEO = TrackInfo("p2-video", "p2", "Party", "video", "VP8", 90000)
AUDIO = TrackInfo("p2-audio", "p2", "Party", "audio", "opus", 48000)


@pytest.fixture(scope="module")
def signer() -> ManifestSigner:
    return ManifestSigner.generate()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, signer: ManifestSigner) -> Path:
    """A finished recording with 3 video and 3 audio segments, events and a pause."""
    folder = tmp_path_factory.mktemp("pristine") / "rec"
    session = RecordingSession(folder, "rec-9", "hearing-9", signer, 1.0)
    session.start()
    session.add_track(VIDEO)
    session.add_track(AUDIO)
    session.event("join", {"participant": "p2"}, at=BASE)
    tracks = {
        VIDEO.track_id: encode_video(3.0, keyframe_interval=15),
        AUDIO.track_id: encode_audio(3.0),
    }
    for track_id, frame, seconds in interleave(
        tracks, {VIDEO.track_id: 90000, AUDIO.track_id: 48000}
    ):
        session.push_frame(
            track_id, frame.rtp_timestamp, frame.data, frame.keyframe, BASE + seconds
        )
    session.pause("recess", "judge-9")
    session.resume("judge-9")
    session.stop()
    return folder


@pytest.fixture
def rec(pristine: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "rec"
    shutil.copytree(pristine, folder)
    return folder


def lines(folder: Path) -> list[bytes]:
    return (folder / "manifest.jsonl").read_bytes().splitlines()


def entries(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines(folder)]


def segment_files(folder: Path, track: str = VIDEO.track_id) -> list[str]:
    return [e["file"] for e in entries(folder) if e["type"] == "segment" and e["track_id"] == track]


def faults_of(report: VerifyReport, kind: str) -> list[str]:
    return [f for f in report.faults if f.startswith(kind + ":")]


def rewrite_manifest(
    folder: Path, signer: ManifestSigner, new_entries: list[dict[str, Any]]
) -> None:
    """Re-chain and re-sign edited entries, as someone holding ``signer``'s key could."""
    for name in ("manifest.jsonl", "manifest.sig"):
        (folder / name).unlink()
    stripped = [{k: v for k, v in e.items() if k not in ("seq", "prev")} for e in new_entries]
    writer = ManifestWriter.create(folder, signer, stripped[0])
    for entry in stripped[1:]:
        writer.append(entry)
    writer.sign()
    writer.close()


def test_clean_recording_verifies(pristine: Path, signer: ManifestSigner) -> None:
    report = verify_recording(pristine, trusted_public_key=signer.public_key_pem())
    assert report.ok, report.faults
    assert report.faults == [] and report.segments == 6 and report.status == "complete"
    raw = signer.public_key.public_bytes_raw()
    assert verify_recording(pristine, trusted_public_key=raw).ok


def test_flipped_bit_in_a_segment(rec: Path) -> None:
    target = rec / segment_files(rec)[1]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    report = verify_recording(rec)
    assert not report.ok
    assert faults_of(report, "segment-modified") == [
        "segment-modified: p2-video/000001.webm: SHA-256 differs from the manifest"
    ]


def test_deleted_segment(rec: Path) -> None:
    (rec / segment_files(rec, AUDIO.track_id)[0]).unlink()
    report = verify_recording(rec)
    assert not report.ok
    assert [f.split(":")[1].strip() for f in faults_of(report, "segment-missing")] == [
        "p2-audio/000000.webm"
    ]


def test_segment_removed_from_files_and_manifest_alike(rec: Path, signer: ManifestSigner) -> None:
    """Even someone holding the key cannot drop a segment unnoticed: indices must be contiguous."""
    name = segment_files(rec)[1]
    (rec / name).unlink()
    rewrite_manifest(rec, signer, [e for e in entries(rec) if e.get("file") != name])
    report = verify_recording(rec, trusted_public_key=signer.public_key_pem())
    assert report.faults == [
        "segment-missing: p2-video/000001.webm: index 1 is not in the manifest (line 6 has 2)"
    ]


def test_swapped_segment_files(rec: Path) -> None:
    a, b = (rec / f for f in segment_files(rec)[:2])
    tmp = a.with_suffix(".swap")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    report = verify_recording(rec)
    assert not report.ok
    assert faults_of(report, "segment-reordered") == [
        "segment-reordered: p2-video/000000.webm: holds the bytes listed for p2-video/000001.webm",
        "segment-reordered: p2-video/000001.webm: holds the bytes listed for p2-video/000000.webm",
    ]


def test_swapped_manifest_lines(rec: Path) -> None:
    raw = lines(rec)
    i = next(n for n, e in enumerate(entries(rec)) if e["type"] == "segment")
    raw[i], raw[i + 1] = raw[i + 1], raw[i]
    (rec / "manifest.jsonl").write_bytes(b"\n".join(raw) + b"\n")
    report = verify_recording(rec)
    assert not report.ok
    assert faults_of(report, "entry-reordered")
    assert faults_of(report, "chain-broken")
    assert faults_of(report, "manifest-replaced")  # the signed bytes are not these bytes
    assert not faults_of(report, "segment-missing")  # content judged in written order


def test_truncated_segment(rec: Path) -> None:
    target = rec / segment_files(rec)[2]
    size = target.stat().st_size
    with open(target, "r+b") as f:
        f.truncate(size - 100)
    report = verify_recording(rec)
    assert faults_of(report, "segment-truncated") == [
        f"segment-truncated: p2-video/000002.webm: {size - 100} bytes, manifest lists {size}"
    ]


def test_replaced_manifest_without_the_key(rec: Path, signer: ManifestSigner) -> None:
    """Someone doctors a segment and rewrites the manifest to match, but cannot sign it."""
    name = segment_files(rec)[0]
    target = rec / name
    target.write_bytes(target.read_bytes()[:-10])
    edited = entries(rec)
    for entry in edited:
        if entry.get("file") == name:
            entry["bytes"], entry["sha256"] = file_sha256(target)[1], file_sha256(target)[0]
    kept = {n: (rec / n).read_bytes() for n in ("manifest.sig", "public_key.pem")}
    rewrite_manifest(rec, ManifestSigner.generate(), edited)  # a valid chain, signed by nobody
    for n, data in kept.items():
        (rec / n).write_bytes(data)
    report = verify_recording(rec, trusted_public_key=signer.public_key_pem())
    assert not report.ok
    assert [f.split(":")[0] for f in report.faults] == ["manifest-replaced"]


def test_replaced_manifest_detected_with_the_included_key(rec: Path) -> None:
    edited = entries(rec)
    edited[3]["end"] = edited[3]["start"]
    raw = [json.dumps(e, sort_keys=True, separators=(",", ":")).encode() for e in edited]
    (rec / "manifest.jsonl").write_bytes(b"\n".join(raw) + b"\n")
    report = verify_recording(rec)
    assert faults_of(report, "chain-broken") and faults_of(report, "manifest-replaced")


def test_manifest_signed_with_another_key(rec: Path, signer: ManifestSigner) -> None:
    intruder = ManifestSigner.generate()
    rewrite_manifest(rec, intruder, entries(rec))  # replaces public_key.pem too
    assert verify_recording(rec).ok  # consistent on its own terms...
    report = verify_recording(rec, trusted_public_key=signer.public_key_pem())
    assert not report.ok  # ...but not signed by the court's key
    assert faults_of(report, "key-untrusted") and faults_of(report, "signed-by-other-key")


def test_signature_by_another_key_with_the_right_public_key_file(
    rec: Path, signer: ManifestSigner
) -> None:
    intruder = ManifestSigner.generate()
    rewrite_manifest(rec, intruder, entries(rec))
    (rec / "public_key.pem").write_bytes(signer.public_key_pem())
    report = verify_recording(rec)
    assert faults_of(report, "signature-invalid")


def test_backdated_entry(rec: Path, signer: ManifestSigner) -> None:
    """Even with a valid signature (a faulty or dishonest recorder), backdating is named."""
    edited = entries(rec)
    video = [e for e in edited if e.get("file") in segment_files(rec)]
    video[2]["start"] = iso_utc(parse_iso_utc(video[0]["start"]) - 60)
    rewrite_manifest(rec, signer, edited)
    report = verify_recording(rec, trusted_public_key=signer.public_key_pem())
    assert [f.split(":")[0] for f in report.faults] == ["backdated"]
    assert "p2-video/000002.webm" in report.faults[0]


def test_entry_ending_before_it_starts(rec: Path, signer: ManifestSigner) -> None:
    edited = entries(rec)
    gap = next(e for e in edited if e["type"] == "gap")
    gap["end"] = iso_utc(parse_iso_utc(gap["start"]) - 1)
    rewrite_manifest(rec, signer, edited)
    report = verify_recording(rec)
    assert [f.split(":")[0] for f in report.faults] == ["end-before-start"]


def test_edited_events_and_extra_files(rec: Path) -> None:
    events = rec / "events.jsonl"
    events.write_bytes(events.read_bytes().replace(b"p2", b"p7"))
    (rec / "p2-video" / "000099.webm").write_bytes(b"planted")
    (rec / "p2-video" / "000100.webm.part").write_bytes(b"left over")
    report = verify_recording(rec)
    kinds = sorted(f.split(":")[0] for f in report.faults)
    assert kinds == ["events-modified", "unlisted-file", "unrecovered-part"]


def test_missing_manifest(rec: Path) -> None:
    (rec / "manifest.jsonl").unlink()
    report = verify_recording(rec)
    assert not report.ok and faults_of(report, "manifest-missing")
