"""`tingshen`: run the server, and manage hearings on a running server.

Every client command reaches the server at `--server` / `TINGSHEN_SERVER` (default
http://127.0.0.1:8080) with the admin credential from `TINGSHEN_TOKEN`, or read from the data folder
(`--data` / `TINGSHEN_DATA`, default ./data) where `serve` created it on first start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from server import archive_cli
from server.state import ADMIN_TOKEN_FILE
from signaling.tokens import COURT_CODE

KINDS = ["hearing", "cross-court", "arraignment", "meeting", "observation", "petition"]
DEFAULT_SERVER = "http://127.0.0.1:8080"


class CliError(Exception):
    pass


# -- talking to a server ---------------------------------------------------------------------


def _token(args: argparse.Namespace) -> str:
    token = os.environ.get("TINGSHEN_TOKEN")
    if token:
        return token.strip()
    data = Path(args.data or os.environ.get("TINGSHEN_DATA") or "data")
    path = data / ADMIN_TOKEN_FILE
    try:
        return path.read_text().strip()
    except OSError:
        raise CliError(
            f"no admin credential: {path} is missing (start `tingshen serve --data {data}` once, "
            "or set TINGSHEN_TOKEN)"
        ) from None


def _server(args: argparse.Namespace) -> str:
    return str(args.server or os.environ.get("TINGSHEN_SERVER") or DEFAULT_SERVER).rstrip("/")


def call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    url = _server(args) + path
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {_token(args)}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read())["error"]
            message = f"{detail['code']}: {detail['message']}"
        except Exception:
            message = exc.reason
        raise CliError(f"{method} {path}: HTTP {exc.code} {message}") from None
    except urllib.error.URLError as exc:
        raise CliError(f"cannot reach {url}: {exc.reason}") from None


# -- commands ------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from server.app import create_app
    from server.settings import Settings

    overrides: dict[str, Any] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.data:
        overrides["data"] = Path(args.data)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise CliError(_settings_errors(exc)) from None
    app = create_app(settings)
    if args.demo:

        async def demo(app: web.Application) -> None:
            asyncio.get_running_loop().call_later(0.2, _print_demo, settings)

        app.on_startup.append(demo)
    print(
        f"Tingshen listening on {settings.base_url}  (data: {settings.data.resolve()})", flush=True
    )
    web.run_app(app, host=settings.host, port=settings.port, print=None, shutdown_timeout=5)
    return 0


def _settings_errors(exc: ValidationError) -> str:
    """A configuration mistake in one line per error, not a traceback."""
    lines = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        where = ".".join(str(p) for p in error["loc"])
        lines.append(message if not where or message.startswith(where) else f"{where}: {message}")
    return "invalid settings: " + "; ".join(lines)


def _print_demo(settings: Any) -> None:
    """Create a demo hearing on the just-started server and print its links (in a thread)."""
    import threading

    def run() -> None:
        ns = argparse.Namespace(server=settings.base_url, data=str(settings.data))
        try:
            result = call(
                ns,
                "POST",
                "/api/hearings",
                {
                    "caseNumber": "（2026）川33刑初1号 demo",
                    "kind": "hearing",
                    "invites": [
                        {"role": "judge", "name": "审判长"},
                        {"role": "party", "name": "当事人"},
                    ],
                    # the demo skips the lobby so two windows see each other at once
                    "autoAdmit": ["party"],
                },
            )
        except CliError as exc:
            print(f"demo hearing not created: {exc}", file=sys.stderr, flush=True)
            return
        print(f"\nDemo hearing {result['id']} — open each link in its own browser window:")
        for invite in result["invites"]:
            print(f"  {invite['role']:>8} {invite['name']}: {invite['url']}")
        print(flush=True)

    threading.Thread(target=run, daemon=True).start()


def parse_invite(spec: str) -> dict[str, str]:
    """``ROLE:NAME`` or ``ROLE:NAME@COURT`` as an invitation of the API (``{role, name, court}``).

    The role ends at the first ``:``; the court is what follows the last ``@``, a court code
    (``a-z``, digits, ``-``: ``judge:审判长@shiqu``). A Chinese or Tibetan name holds neither
    character, so the two never clash; a name that holds an ``@`` names its court after it
    (``observer:a@b@gz-zy``). Without ``@COURT`` the invitee is at the hearing's court.
    """
    role, sep, rest = spec.partition(":")
    name, at, court = rest.rpartition("@")
    if not at:
        name, court = rest, ""
    if not sep or not role or not name or (at and not COURT_CODE.fullmatch(court)):
        raise CliError(f"--invite {spec!r}: expected ROLE:NAME or ROLE:NAME@COURT (a court code)")
    invite = {"role": role, "name": name}
    if court:
        invite["court"] = court
    return invite


def cmd_hearing_create(args: argparse.Namespace) -> int:
    invites = [parse_invite(spec) for spec in args.invite or []]
    body: dict[str, Any] = {
        "caseNumber": args.case,
        "kind": args.kind,
        "invites": invites,
        "autoAdmit": args.auto_admit or [],
    }
    if args.court:
        body["court"] = args.court
    result = call(args, "POST", "/api/hearings", body)
    if args.json:
        out = {
            "id": result["id"],
            "court": result["court"],
            "caseNumber": result["caseNumber"],
            "kind": result["kind"],
            "invites": [
                {k: i[k] for k in ("role", "name", "court", "url", "code")}
                for i in result["invites"]
            ],
        }
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        print(f"hearing {result['id']}  {result['court']}  {result['caseNumber']}")
        for invite in result["invites"]:
            court = f"  @{invite['court']}" if invite["court"] != result["court"] else ""
            print(f"  {invite['role']:<12} {invite['name']:<16} code {invite['code']}{court}")
            print(f"    {invite['url']}")
    return 0


def cmd_hearing_list(args: argparse.Namespace) -> int:
    result = call(args, "GET", "/api/hearings")
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    for h in result:
        print(
            f"{h['id']}  {h['state']:<9} {h['court']:<10} {h['kind']:<11} "
            f"{h['participants']:>3} online  {h['caseNumber']}"
        )
    return 0


def cmd_hearing_end(args: argparse.Namespace) -> int:
    result = call(args, "POST", f"/api/hearings/{args.id}/end")
    print(f"hearing {result['id']} {result['state']}")
    return 0


def cmd_terminal(argv: list[str]) -> int:
    """`tingshen terminal ...`: the defendant's terminal, imported only when asked for."""
    from terminal.app import main as terminal_main

    return terminal_main(argv)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", help="server URL (TINGSHEN_SERVER)")
    common.add_argument("--data", help="data folder holding the admin credential (TINGSHEN_DATA)")

    parser = argparse.ArgumentParser(prog="tingshen", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--data")
    serve.add_argument("--demo", action="store_true", help="create a demo hearing, print links")
    serve.set_defaults(func=cmd_serve)

    hearing = sub.add_parser("hearing", help="create, list and end hearings")
    hsub = hearing.add_subparsers(dest="hearing_command", required=True)
    create = hsub.add_parser("create", parents=[common], help="create a hearing with invitations")
    create.add_argument("--court", help="court code (default: the intermediate court)")
    create.add_argument("--case", required=True, help="case number")
    create.add_argument("--kind", choices=KINDS, default="hearing")
    create.add_argument(
        "--invite",
        action="append",
        metavar="ROLE:NAME[@COURT]",
        help="an invitation; @COURT: the court code the invitee joins from (default: --court); "
        "repeatable",
    )
    create.add_argument(
        "--auto-admit",
        action="append",
        metavar="ROLE",
        help="let this role in without the lobby (judge and clerk always are); repeatable",
    )
    create.add_argument("--json", action="store_true")
    create.set_defaults(func=cmd_hearing_create)
    lst = hsub.add_parser("list", parents=[common], help="list hearings")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_hearing_list)
    end = hsub.add_parser("end", parents=[common], help="end a hearing")
    end.add_argument("id")
    end.set_defaults(func=cmd_hearing_end)
    archive_cli.add_parsers(sub)
    # Its options belong to terminal/ (terminal/config.py) and are parsed there.
    sub.add_parser(
        "terminal", add_help=False, help="run the remote defendant's terminal (--help for options)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "terminal":
        return cmd_terminal([*rest, *(["--verbose"] if args.verbose else [])])
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aioice").setLevel(logging.WARNING)
    try:
        return int(args.func(args))
    except (CliError, archive_cli.ArchiveError) as exc:
        print(f"tingshen: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
