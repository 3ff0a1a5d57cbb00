"""The signing key, the hash chain and its signature (recorder.manifest)."""

from __future__ import annotations

import base64
import json
import stat
import time
from pathlib import Path

import pytest

from recorder.manifest import (
    GENESIS,
    ManifestError,
    ManifestSigner,
    ManifestWriter,
    canonical_json,
    iso_utc,
    load_public_key,
    parse_iso_utc,
    sha256_hex,
    signature_fields,
    signed_message,
    verify_signature,
)
from recorder.session import RecordingSession
from recorder.synthetic import encode_audio
from recorder.track import TrackInfo

HEADER = {"type": "recording", "recording_id": "rec-1", "hearing_id": "h-1"}


def test_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    key_path = tmp_path / "signing_key.pem"
    first = ManifestSigner.load_or_create(key_path)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    again = ManifestSigner.load_or_create(key_path)
    assert again.public_key_pem() == first.public_key_pem()
    assert again.fingerprint() == first.fingerprint()
    public = load_public_key(first.public_key_pem())
    assert verify_signature(public, first.sign(b"data"), b"data")
    assert not verify_signature(public, first.sign(b"data"), b"other")


def test_world_readable_key_is_loaded_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_path = tmp_path / "k.pem"
    ManifestSigner.load_or_create(key_path)
    key_path.chmod(0o644)
    ManifestSigner.load_or_create(key_path)
    assert "readable by others" in caplog.text


def test_canonical_json_and_times() -> None:
    assert canonical_json({"b": 1, "a": "庭"}) == '{"a":"庭","b":1}'.encode()
    assert iso_utc(1_700_000_000.1234) == "2023-11-14T22:13:20.123Z"
    assert parse_iso_utc("2023-11-14T22:13:20.123Z") == pytest.approx(1_700_000_000.123)


def test_entries_form_a_signed_hash_chain(tmp_path: Path) -> None:
    signer = ManifestSigner.generate()
    writer = ManifestWriter.create(tmp_path, signer, HEADER)
    second = writer.append({"type": "track", "track_id": "p1-audio"})
    writer.sign()
    writer.close()
    lines = (tmp_path / "manifest.jsonl").read_bytes().splitlines()
    first = json.loads(lines[0])
    assert (first["seq"], first["prev"]) == (0, GENESIS)
    assert (second["seq"], second["prev"]) == (1, sha256_hex(lines[0]))
    assert writer.head == sha256_hex(lines[1])
    document = json.loads((tmp_path / "manifest.sig").read_bytes())
    assert document["entries"] == 2 and document["head"] == writer.head
    manifest = (tmp_path / "manifest.jsonl").read_bytes()
    assert document["manifest_sha256"] == sha256_hex(manifest)
    signature = base64.b64decode(document["signature"])
    public = load_public_key((tmp_path / "public_key.pem").read_bytes())
    assert verify_signature(public, signature, signed_message(signature_fields(document)))
    with pytest.raises(FileExistsError):
        ManifestWriter.create(tmp_path, signer, HEADER)


def test_reopening_continues_the_chain_and_drops_a_partial_line(tmp_path: Path) -> None:
    signer = ManifestSigner.generate()
    writer = ManifestWriter.create(tmp_path, signer, HEADER)
    writer.append({"type": "track", "track_id": "p1-audio"})
    head = writer.head
    writer.close()
    with open(tmp_path / "manifest.jsonl", "ab") as f:
        f.write(b'{"type":"segm')  # the crash hit mid-line
    reopened, dropped = ManifestWriter.open_existing(tmp_path, signer)
    assert dropped == 13 and reopened.count == 2 and reopened.head == head
    entry = reopened.append({"type": "end"})
    reopened.close()
    assert entry["prev"] == head and entry["seq"] == 2


def test_reopening_refuses_a_broken_chain(tmp_path: Path) -> None:
    signer = ManifestSigner.generate()
    writer = ManifestWriter.create(tmp_path, signer, HEADER)
    writer.append({"type": "track", "track_id": "a"})
    writer.append({"type": "track", "track_id": "b"})
    writer.close()
    path = tmp_path / "manifest.jsonl"
    lines = path.read_bytes().splitlines()
    path.write_bytes(b"\n".join([lines[0], lines[2]]) + b"\n")
    with pytest.raises(ManifestError, match="chain broken"):
        ManifestWriter.open_existing(tmp_path, signer)


def test_signature_is_kept_current_while_recording(tmp_path: Path) -> None:
    """Each closed segment re-signs the manifest: a crash leaves a verifiable prefix."""
    frames = encode_audio(3.0)
    folder = tmp_path / "rec"
    session = RecordingSession(folder, "rec-1", "h-1", ManifestSigner.generate(), 1.0)
    session.start()
    session.add_track(TrackInfo("p1-audio", "p1", "p", "audio", "opus", 48000))
    seen: list[int] = []
    for n, frame in enumerate(frames):
        session.push_frame("p1-audio", frame.rtp_timestamp, frame.data, True, 1e9)
        if n % 50 == 49:  # one second pushed: let the worker catch up, then look
            deadline = time.monotonic() + 5
            while session.stats().queued_frames and time.monotonic() < deadline:
                time.sleep(0.005)
            seen.append(json.loads((folder / "manifest.sig").read_bytes())["entries"])
    session.stop()
    # header + track, then one more entry per closed one-second segment
    assert seen == [2, 3, 4]
    final = json.loads((folder / "manifest.sig").read_bytes())
    assert final["entries"] == len((folder / "manifest.jsonl").read_bytes().splitlines())
