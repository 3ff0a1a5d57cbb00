"""`tingshen archive ...`: list, verify and render recordings from a data folder (works offline).

These commands read the recordings folder and the catalog database named by the settings of the
data folder (`--data` / `TINGSHEN_DATA`), so an archivist can check a recording on a machine where
no server runs, or on a copied folder (`verify PATH`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from server.recording import SIGNING_KEY_FILE


class ArchiveError(Exception):
    pass


def _settings(args: argparse.Namespace) -> Any:
    from server.settings import Settings

    data = args.data or os.environ.get("TINGSHEN_DATA") or "data"
    return Settings(data=Path(data))


def _database(settings: Any) -> Any:
    from server.db import Database

    if not settings.data.is_dir():
        raise ArchiveError(f"no data folder at {settings.data}")
    db = Database(settings.db_url)
    db.migrate()
    return db


def _trusted_key(args: argparse.Namespace, settings: Any) -> tuple[bytes | None, str]:
    """The public key to check signatures against, and where it came from."""
    if args.key:
        return Path(args.key).read_bytes(), args.key
    key_file = settings.data / SIGNING_KEY_FILE
    if key_file.is_file():
        from recorder.manifest import ManifestSigner

        return ManifestSigner.load_or_create(key_file).public_key_pem(), str(key_file)
    return None, "the recording's own public_key.pem (not pinned: pass --key)"


def _resolve(args: argparse.Namespace, settings: Any) -> tuple[Path, str | None]:
    """ID or PATH -> (recording folder, recording id if it came from the catalog)."""
    target = args.target
    as_path = Path(target)
    if as_path.is_dir():
        return as_path, None
    if not target.isalnum() or len(target) > 64:
        raise ArchiveError(f"{target!r} is neither a folder nor a recording id")
    from server import catalog

    db = _database(settings)
    try:
        detail = catalog.recording_detail(db, settings.recordings_dir, target)
    finally:
        db.dispose()
    if detail is None:
        raise ArchiveError(f"no recording {target} in the catalog of {settings.data}")
    return Path(detail["path"]), target


def cmd_list(args: argparse.Namespace) -> int:
    from server import catalog

    settings = _settings(args)
    db = _database(settings)
    try:
        catalog.reindex_all(db, settings.recordings_dir)
        rows = catalog.list_recordings(
            db,
            settings.recordings_dir,
            hearing_id=args.hearing,
            court=args.court,
            case_number=args.case,
            participant=args.participant,
        )
    finally:
        db.dispose()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for r in rows:
        print(
            f"{r['id']}  {r['status']:<11} {r['court'] or '-':<10} {r['started_at'] or '-':<25} "
            f"{r['segments']:>5} seg  {r['case_number'] or ''}"
        )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from recorder.verify import verify_recording

    settings = _settings(args)
    folder, recording_id = _resolve(args, settings)
    key, key_source = _trusted_key(args, settings)
    report = verify_recording(folder, key)
    if recording_id is not None:
        from server import catalog

        db = _database(settings)
        try:
            catalog.record_verification(db, recording_id, report.ok)
        finally:
            db.dispose()
    result = {
        "ok": report.ok,
        "folder": str(folder),
        "status": report.status,
        "segments": report.segments,
        "entries": report.entries,
        "faults": report.faults,
        "warnings": report.warnings,
        "key": key_source,
    }
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        verdict = "OK" if report.ok else "FAILED"
        print(f"{verdict}: {folder} ({report.segments} segments, status {report.status})")
        print(f"  key: {key_source}")
        for fault in report.faults:
            print(f"  fault: {fault}")
        for warning in report.warnings:
            print(f"  warning: {warning}")
    return 0 if report.ok else 1


def cmd_render(args: argparse.Namespace) -> int:
    """Render the composite "what the court saw" file and add its hash to the signed manifest."""
    from recorder.composite import CompositeError, render_composite
    from recorder.manifest import ManifestSigner
    from server import catalog
    from server.settings import load_courts

    settings = _settings(args)
    folder, _ = _resolve(args, settings)
    header = json.loads((folder / "recording.json").read_text())
    hearing_id = str(header.get("hearing_id", ""))
    court, case_number = "", ""
    db = _database(settings)
    try:
        row = db.get_hearing(hearing_id)
        if row is not None:
            courts = {c.code: c.name for c in load_courts(settings.courts_file)}
            court, case_number = courts.get(row.court, row.court), row.case_number
        key_file = settings.data / SIGNING_KEY_FILE
        signer = ManifestSigner.load_or_create(key_file) if key_file.is_file() else None
        out = folder / (args.name or "composite.mp4")

        def progress(fraction: float) -> None:
            if not args.quiet:
                print(f"\rrendering {folder.name}: {fraction * 100:5.1f} %", end="", flush=True)

        try:
            result = render_composite(
                folder,
                out,
                court=court,
                case_number=case_number,
                signer=signer,
                progress=progress,
            )
        except CompositeError as exc:
            raise ArchiveError(f"cannot render {folder}: {exc}") from None
        if not args.quiet:
            print()
        if settings.recordings_dir.resolve() in folder.resolve().parents:
            catalog.index_recording(db, settings.recordings_dir, folder)
    finally:
        db.dispose()
    print(
        json.dumps(
            {
                "path": str(result.path),
                "sha256": result.sha256,
                "bytes": result.bytes,
                "duration_s": round(result.duration_s, 3),
                "signed": signer is not None,
            },
            ensure_ascii=False,
        )
    )
    return 0


def cmd_public_key(args: argparse.Namespace) -> int:
    settings = _settings(args)
    key_file = settings.data / SIGNING_KEY_FILE
    if not key_file.is_file():
        raise ArchiveError(f"no signing key in {settings.data} (the server creates it on start)")
    from recorder.manifest import ManifestSigner

    sys.stdout.write(ManifestSigner.load_or_create(key_file).public_key_pem().decode())
    return 0


def add_parsers(sub: Any) -> None:
    archive = sub.add_parser("archive", help="list, verify and render recordings")
    asub = archive.add_subparsers(dest="archive_command", required=True)
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument("--data", help="data folder (TINGSHEN_DATA, default ./data)")

    lst = asub.add_parser("list", parents=[data], help="list recordings (from the catalog)")
    lst.add_argument("--hearing")
    lst.add_argument("--court")
    lst.add_argument("--case", help="part of a case number")
    lst.add_argument("--participant", help="part of a participant's name")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_list)

    verify = asub.add_parser(
        "verify", parents=[data], help="verify a recording offline; exit 1 naming each fault"
    )
    verify.add_argument("target", metavar="ID|PATH")
    verify.add_argument("--key", help="trusted public key (PEM); default: the data folder's key")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(func=cmd_verify)

    render = asub.add_parser(
        "render", parents=[data], help="render the composite (grid, names, time overlay)"
    )
    render.add_argument("target", metavar="ID|PATH")
    render.add_argument("--name", help="output file name in the folder (default composite.mp4)")
    render.add_argument("--quiet", action="store_true")
    render.set_defaults(func=cmd_render)

    key = asub.add_parser("public-key", parents=[data], help="print the recording signing key")
    key.set_defaults(func=cmd_public_key)
