"""`tingshen archive ...` and `tingshen audit|token`: the archive from the command line.

Every archive command works against a server (`--server URL` / `TINGSHEN_SERVER`, with a bearer
token from `--token` / `TINGSHEN_TOKEN`, else the data folder's admin credential) or, without a
server, on a data folder (`--data` / `TINGSHEN_DATA`): the recordings folder and the catalog
database named by its settings, so an archivist can check a recording where no server runs, or a
copied folder (`verify PATH`), or an export bundle (`verify BUNDLE.zip`). `pull` and `token` need
a server; `render` and `public-key` work on a data folder. Local listings and exports are written
to the audit log too (actor ``local:<user>``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

from server.archive_client import ArchiveClient, ClientError
from server.recording import SIGNING_KEY_FILE

#: Raised for every refusal of an archive command (the CLI prints it and exits 2).
ArchiveError = ClientError
ADMIN_TOKEN_FILE = "admin.token"


def _settings(args: argparse.Namespace) -> Any:
    from server.settings import Settings

    data = getattr(args, "data", None) or os.environ.get("TINGSHEN_DATA") or "data"
    return Settings(data=Path(data))


def _database(settings: Any) -> Any:
    from server.db import Database

    if not settings.data.is_dir():
        raise ArchiveError(f"no data folder at {settings.data}")
    db = Database(settings.db_url)
    db.migrate()
    return db


def _server(args: argparse.Namespace) -> str | None:
    return getattr(args, "server", None) or os.environ.get("TINGSHEN_SERVER") or None


def _client(args: argparse.Namespace, *, required: bool = False) -> ArchiveClient | None:
    """The server client when a server is named (None: work on the data folder)."""
    server = _server(args)
    if server is None:
        if required:
            raise ArchiveError("this command needs a server: --server URL or TINGSHEN_SERVER")
        return None
    token = getattr(args, "token", None) or os.environ.get("TINGSHEN_TOKEN")
    if not token:
        path = _settings(args).data / ADMIN_TOKEN_FILE
        try:
            token = path.read_text()
        except OSError:
            raise ArchiveError(
                f"no token: pass --token, set TINGSHEN_TOKEN, or keep {path} (admin)"
            ) from None
    return ArchiveClient(server, token.strip())


def _audit_local(settings: Any, db: Any, action: str, **fields: Any) -> None:
    from recorder.manifest import ManifestSigner
    from server.audit import AuditLog

    key_file = settings.data / SIGNING_KEY_FILE
    signer = ManifestSigner.load_or_create(key_file) if key_file.is_file() else None
    log = AuditLog(db, settings.data / "audit-head.json", signer)
    log.append(actor=f"local:{getpass.getuser()}", role="local", action=action, **fields)


def _trusted_key(args: argparse.Namespace, settings: Any) -> tuple[bytes | None, str]:
    """The public key to check signatures against, and where it came from."""
    if args.key:
        return Path(args.key).read_bytes(), args.key
    key_file = settings.data / SIGNING_KEY_FILE
    if key_file.is_file():
        from recorder.manifest import ManifestSigner

        return ManifestSigner.load_or_create(key_file).public_key_pem(), str(key_file)
    return None, "the recording's own public_key.pem (not pinned: pass --key)"


def _check_id(target: str) -> str:
    from server.archive_api import RECORDING_ID

    if not RECORDING_ID.fullmatch(target):
        raise ArchiveError(f"{target!r} is neither a folder, a bundle nor a recording id")
    return target


def _resolve(args: argparse.Namespace, settings: Any) -> tuple[Path, str | None]:
    """ID or PATH -> (recording folder, recording id if it came from the catalog)."""
    target = args.target
    as_path = Path(target)
    if as_path.is_dir():
        return as_path, None
    _check_id(target)
    from server import catalog

    db = _database(settings)
    try:
        detail = catalog.recording_summary(db, settings.recordings_dir, target)
    finally:
        db.dispose()
    if detail is None:
        raise ArchiveError(f"no recording {target} in the catalog of {settings.data}")
    return Path(detail["path"]), target


def _print_rows(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        print(
            f"{r['id']}  {r['status']:<11} {r['court'] or '-':<10} {r['started_at'] or '-':<25} "
            f"{r['segments']:>5} seg  {r['case_number'] or ''}"
        )


# -- commands ---------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    client = _client(args)
    filters = {
        "hearing": args.hearing,
        "court": args.court,
        "case": args.case,
        "participant": args.participant,
        "since": args.since,
        "until": args.until,
    }
    if client is not None:
        rows = client.get_json("/api/archive/recordings", {**filters, "limit": args.limit})["items"]
    else:
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
                since=_date(args.since),
                until=_date(args.until),
                limit=args.limit,
            )
            query = {k: v for k, v in filters.items() if v is not None}
            _audit_local(settings, db, "search", detail={"query": query, "results": len(rows)})
        finally:
            db.dispose()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        _print_rows(rows)
    return 0


def _date(text: str | None) -> Any:
    import datetime as dt

    if text is None:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ArchiveError(f"{text!r} is not an ISO 8601 date or time") from None


def cmd_show(args: argparse.Namespace) -> int:
    client = _client(args)
    recording_id = _check_id(args.target)
    if client is not None:
        detail = client.get_json(f"/api/archive/recordings/{recording_id}")
        for f in detail["files"]:
            f["url"] = client.server + f["url"]
    else:
        from server import catalog
        from server.playback import folder_files

        settings = _settings(args)
        db = _database(settings)
        try:
            detail = catalog.recording_detail(db, settings.recordings_dir, recording_id)
            if detail is None:
                raise ArchiveError(f"no recording {recording_id} in the catalog of {settings.data}")
            folder = Path(detail["path"])
            detail["files"] = [
                {**f.as_dict(), "url": (folder / f.name).resolve().as_uri()}
                for f in folder_files(folder)
            ]
            _audit_local(settings, db, "view", recording_id=recording_id)
        finally:
            db.dispose()
    if args.json:
        print(json.dumps(detail, ensure_ascii=False, indent=2))
        return 0
    _print_rows([detail])
    print(f"  participants: {', '.join(detail['participants']) or '-'}")
    print(f"  verified: {detail['verify_ok']} at {detail['verified_at']}")
    for event in detail["events"]:
        who = event.get("participant_name") or ""
        print(f"  {event['at']}  {event['kind']:<18} {who}")
    for f in detail["files"]:
        print(f"  {f['sha256'] or '-':<64}  {f['bytes'] or 0:>10}  {f['name']}")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    client = _client(args, required=True)
    assert client is not None
    recording_id = _check_id(args.target)
    to = Path(args.to)
    progress_bar: Any = None

    def progress(total: int, files: int) -> Any:
        nonlocal progress_bar
        if args.quiet:
            return None
        try:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TransferSpeedColumn,
            )
        except ImportError:  # rich is optional: plain counts then
            return None
        progress_bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            transient=False,
        )
        progress_bar.start()
        task = progress_bar.add_task(f"{recording_id} ({files} files)", total=total)
        return lambda n: progress_bar.advance(task, n)

    try:
        report = client.pull(recording_id, to, progress)
    finally:
        if progress_bar is not None:
            progress_bar.stop()
    print(
        f"pulled {recording_id} to {report.folder}: {len(report.downloaded)} downloaded "
        f"({len(report.resumed)} resumed), {len(report.skipped)} already there, "
        f"{report.bytes} bytes, every SHA-256 checked"
    )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    target = Path(args.target)
    if target.is_file():
        return _verify_bundle(args, target)
    client = _client(args)
    if client is not None and not target.is_dir():
        result = client.post_json(f"/api/archive/recordings/{_check_id(args.target)}/verify")
        result.update(folder=f"{client.server} {args.target}", key=result.get("key_sha256"))
        return _print_verify(args, result)
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
            _audit_local(
                settings, db, "verify", recording_id=recording_id, detail={"ok": report.ok}
            )
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
    return _print_verify(args, result)


def _verify_bundle(args: argparse.Namespace, path: Path) -> int:
    from server.bundle import BundleError, verify_bundle

    if not zipfile.is_zipfile(path):
        raise ArchiveError(f"{path} is not a zip file (an export bundle is one)")
    key, key_source = _trusted_key(args, _settings(args))
    try:
        report = verify_bundle(path, key)
    except BundleError as exc:
        raise ArchiveError(str(exc)) from None
    result = {
        "ok": report.ok,
        "folder": str(path),
        "status": report.status,
        "segments": report.segments,
        "audit_entries": report.audit_entries,
        "exhibits": report.exhibits,
        "faults": report.faults,
        "warnings": report.warnings,
        "key": key_source,
    }
    return _print_verify(args, result)


def _print_verify(args: argparse.Namespace, result: dict[str, Any]) -> int:
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        verdict = "OK" if result["ok"] else "FAILED"
        exhibits = f", {result['exhibits']} exhibits" if result.get("exhibits") else ""
        print(
            f"{verdict}: {result['folder']} ({result['segments']} segments{exhibits}, "
            f"status {result['status']})"
        )
        print(f"  key: {result['key']}")
        for fault in result["faults"]:
            print(f"  fault: {fault}")
        for warning in result["warnings"]:
            print(f"  warning: {warning}")
    return 0 if result["ok"] else 1


def cmd_export(args: argparse.Namespace) -> int:
    recording_id = _check_id(args.target)
    out = Path(args.to)
    if out.is_dir():
        out = out / f"tingshen-{recording_id}.zip"
    client = _client(args)
    if client is not None:
        sha256, size = client.export(recording_id, out)
    else:
        from server import catalog
        from server.audit import AuditLog
        from server.bundle import write_bundle
        from server.exhibit_archive import exhibit_folder

        settings = _settings(args)
        db = _database(settings)
        try:
            detail = catalog.recording_detail(db, settings.recordings_dir, recording_id)
            if detail is None:
                raise ArchiveError(f"no recording {recording_id} in the catalog of {settings.data}")
            key_file = settings.data / SIGNING_KEY_FILE
            if not key_file.is_file():
                raise ArchiveError(f"no signing key in {settings.data}")
            from recorder.manifest import ManifestSigner

            signer = ManifestSigner.load_or_create(key_file)
            entries = AuditLog(db).entries(recording_id=recording_id, limit=100_000)
            folder = Path(detail.pop("path"))
            result = write_bundle(
                folder,
                out,
                detail=detail,
                audit_entries=[e.as_dict() for e in entries],
                created_by=f"local:{getpass.getuser()}",
                server_key_pem=signer.public_key_pem(),
                exhibits_dir=exhibit_folder(settings.data, detail["hearing_id"]),
            )
            sha256, size = result.sha256, result.bytes
            for problem in result.missing_exhibits:
                print(f"warning: exhibit left out: {problem}", file=sys.stderr)
            _audit_local(
                settings,
                db,
                "export",
                recording_id=recording_id,
                hearing_id=detail["hearing_id"],
                target=out.name,
                sha256=sha256,
            )
        finally:
            db.dispose()
    print(f"exported {recording_id} to {out} ({size} bytes, sha256 {sha256})")
    return 0


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


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Check the audit log's hash chain (exit 1 naming each fault)."""
    client = _client(args)
    if client is not None:
        result = client.get_json("/api/archive/audit/verify")
    else:
        from recorder.manifest import ManifestSigner
        from server.audit import AuditLog

        settings = _settings(args)
        key_file = settings.data / SIGNING_KEY_FILE
        signer = ManifestSigner.load_or_create(key_file) if key_file.is_file() else None
        db = _database(settings)
        try:
            report = AuditLog(db, settings.data / "audit-head.json", signer).verify()
        finally:
            db.dispose()
        result = {"ok": report.ok, "entries": report.entries, "faults": report.faults}
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(f"{'OK' if result['ok'] else 'FAILED'}: audit log, {result['entries']} entries")
        for fault in result["faults"]:
            print(f"  fault: {fault}")
    return 0 if result["ok"] else 1


def cmd_token(args: argparse.Namespace) -> int:
    """Print a bearer token issued by the server (admin credential needed)."""
    client = _client(args, required=True)
    assert client is not None
    body: dict[str, Any] = {"role": args.role, "ttlHours": args.ttl_hours}
    if args.hearing:
        body["hearing"] = args.hearing
    if args.subject:
        body["subject"] = args.subject
    result = client.post_json("/api/tokens", body)
    print(result["token"])
    return 0


def add_parsers(sub: Any) -> None:
    """Add `archive`, `audit` and `token` to the `tingshen` command."""
    local = argparse.ArgumentParser(add_help=False)
    local.add_argument("--data", help="data folder (TINGSHEN_DATA, default ./data)")
    remote = argparse.ArgumentParser(add_help=False, parents=[local])
    remote.add_argument("--server", help="server URL (TINGSHEN_SERVER); default: the data folder")
    remote.add_argument("--token", help="bearer token (TINGSHEN_TOKEN; default: admin.token)")

    archive = sub.add_parser("archive", help="find, show, pull, verify, export, render recordings")
    asub = archive.add_subparsers(dest="archive_command", required=True)

    lst = asub.add_parser("list", parents=[remote], help="search recordings")
    lst.add_argument("--hearing")
    lst.add_argument("--court")
    lst.add_argument("--case", help="part of a case number")
    lst.add_argument("--participant", help="part of a participant's name")
    lst.add_argument("--since", help="ISO 8601 date or time")
    lst.add_argument("--until", help="ISO 8601 date or time")
    lst.add_argument("--limit", type=int, default=200)
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_list)

    show = asub.add_parser("show", parents=[remote], help="a recording's detail and files")
    show.add_argument("target", metavar="ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)

    pull = asub.add_parser("pull", parents=[remote], help="download a recording (resumable)")
    pull.add_argument("target", metavar="ID")
    pull.add_argument("--to", required=True, help="folder; the recording lands in TO/ID/")
    pull.add_argument("--quiet", action="store_true", help="no progress bar")
    pull.set_defaults(func=cmd_pull)

    verify = asub.add_parser(
        "verify", parents=[remote], help="verify a recording or bundle; exit 1 naming each fault"
    )
    verify.add_argument("target", metavar="ID|PATH|BUNDLE")
    verify.add_argument("--key", help="trusted public key (PEM); default: the data folder's key")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(func=cmd_verify)

    export = asub.add_parser("export", parents=[remote], help="write the export bundle (zip)")
    export.add_argument("target", metavar="ID")
    export.add_argument("--to", required=True, help="bundle file, or a folder for it")
    export.set_defaults(func=cmd_export)

    render = asub.add_parser(
        "render", parents=[local], help="render the composite (grid, names, time overlay)"
    )
    render.add_argument("target", metavar="ID|PATH")
    render.add_argument("--name", help="output file name in the folder (default composite.mp4)")
    render.add_argument("--quiet", action="store_true")
    render.set_defaults(func=cmd_render)

    key = asub.add_parser("public-key", parents=[local], help="print the recording signing key")
    key.set_defaults(func=cmd_public_key)

    audit = sub.add_parser("audit", help="the chain-of-custody audit log")
    audsub = audit.add_subparsers(dest="audit_command", required=True)
    averify = audsub.add_parser("verify", parents=[remote], help="check the hash chain")
    averify.add_argument("--json", action="store_true")
    averify.set_defaults(func=cmd_audit_verify)

    token = sub.add_parser("token", parents=[remote], help="print a bearer token (admin only)")
    token.add_argument("--role", required=True, help="archivist, admin, or a hearing role")
    token.add_argument("--hearing", help="hearing id (for a hearing role such as judge)")
    token.add_argument("--subject", help="who the token is for (name or account)")
    token.add_argument("--ttl-hours", type=float, default=12.0)
    token.set_defaults(func=cmd_token)
