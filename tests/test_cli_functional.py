"""The CLI contract, against a `tingshen serve` subprocess: create, list, end; demo links."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.cli import parse_invite
from tests.conftest import free_port


def tingshen(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[str]]]:
    port = free_port()
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--port",
            str(port),
            "--data",
            str(data),
            "--demo",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(url + "/livez", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("server did not start")
        yield url, data, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_create_list_end(served: tuple[str, Path, subprocess.Popen[str]]) -> None:
    url, data, _ = served
    assert (data / "admin.token").stat().st_mode & 0o077 == 0  # owner-only credential
    common = ["--server", url, "--data", str(data)]
    created = tingshen(
        "hearing",
        "create",
        *common,
        "--court",
        "shiqu",
        "--case",
        "（2026）川3332刑初5号",
        "--kind",
        "arraignment",
        "--invite",
        "judge:王法官",
        "--invite",
        "defendant:张某",
        "--json",
    )
    assert created.returncode == 0, created.stderr
    result = json.loads(created.stdout)
    assert set(result) >= {"id", "invites"}
    assert [(i["role"], i["name"]) for i in result["invites"]] == [
        ("judge", "王法官"),
        ("defendant", "张某"),
    ]
    for invite in result["invites"]:
        assert invite["url"].startswith(url + "/hearing?token=")
        assert len(invite["code"].replace("-", "")) == 8

    listed = tingshen("hearing", "list", *common, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {h["id"]: h for h in json.loads(listed.stdout)}
    assert rows[result["id"]]["court"] == "shiqu"
    assert rows[result["id"]]["kind"] == "arraignment"

    # the environment variables work as well as the options
    ended = tingshen(
        "hearing", "end", result["id"], env={"TINGSHEN_SERVER": url, "TINGSHEN_DATA": str(data)}
    )
    assert ended.returncode == 0, ended.stderr
    listed = json.loads(tingshen("hearing", "list", *common, "--json").stdout)
    assert {h["id"]: h for h in listed}[result["id"]]["state"] == "closed"


@pytest.mark.parametrize(
    ("spec", "invite"),
    [
        ("judge:审判长", {"role": "judge", "name": "审判长"}),
        ("judge:审判长@shiqu", {"role": "judge", "name": "审判长", "court": "shiqu"}),
        ("defendant:བཀྲ་ཤིས།@gz-zy", {"role": "defendant", "name": "བཀྲ་ཤིས།", "court": "gz-zy"}),
        ("party:王:五", {"role": "party", "name": "王:五"}),
        ("observer:a@b@dege", {"role": "observer", "name": "a@b", "court": "dege"}),
    ],
)
def test_invite_syntax(spec: str, invite: dict[str, str]) -> None:
    assert parse_invite(spec) == invite


def test_invitations_at_two_courts(served: tuple[str, Path, subprocess.Popen[str]]) -> None:
    url, data, _ = served
    common = ["--server", url, "--data", str(data), "--case", "（2026）川33刑初6号"]
    invites = ["--invite", "judge:审判长", "--invite", "defendant:张某@shiqu"]
    created = tingshen("hearing", "create", *common, "--kind", "cross-court", *invites, "--json")
    assert created.returncode == 0, created.stderr
    result = json.loads(created.stdout)
    assert [(i["name"], i["court"]) for i in result["invites"]] == [
        ("审判长", "gz-zy"),
        ("张某", "shiqu"),
    ]
    text = tingshen("hearing", "create", *common, "--kind", "cross-court", *invites)
    assert text.returncode == 0, text.stderr
    [judge_line] = [line for line in text.stdout.splitlines() if "审判长" in line]
    [defendant_line] = [line for line in text.stdout.splitlines() if "张某" in line]
    assert "@" not in judge_line and defendant_line.endswith("@shiqu")


def test_default_court_is_the_intermediate_court(
    served: tuple[str, Path, subprocess.Popen[str]],
) -> None:
    url, data, _ = served
    out = tingshen(
        "hearing", "create", "--server", url, "--data", str(data), "--case", "X-1", "--json"
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["court"] == "gz-zy"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--court", "nowhere", "--case", "X"], "unknown-court"),
        (["--case", "X", "--invite", "judge"], "ROLE:NAME"),
        (["--case", "X", "--invite", "emperor:Qin"], "role"),
        (["--case", "X", "--invite", "defendant:张某@atlantis"], "unknown-court"),
        (["--case", "X", "--invite", "defendant:张某@石渠"], "ROLE:NAME@COURT"),
        (["--case", "X", "--invite", "defendant:张某@"], "ROLE:NAME@COURT"),
        (["--case", "X", "--invite", "defendant:@shiqu"], "ROLE:NAME@COURT"),
        (
            ["--case", "X", "--kind", "cross-court", "--invite", "judge:甲"],
            "cross-court-needs-two-courts",
        ),
    ],
)
def test_bad_input_is_refused_clearly(
    served: tuple[str, Path, subprocess.Popen[str]], args: list[str], message: str
) -> None:
    url, data, _ = served
    out = tingshen("hearing", "create", "--server", url, "--data", str(data), *args)
    assert out.returncode != 0
    assert message in out.stderr


def test_wrong_credential_is_refused(
    served: tuple[str, Path, subprocess.Popen[str]], tmp_path: Path
) -> None:
    url, _, _ = served
    out = tingshen("hearing", "list", "--server", url, env={"TINGSHEN_TOKEN": "not-a-token"})
    assert out.returncode == 2 and "401" in out.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tingshen("hearing", "list", "--server", url, "--data", str(empty))
    assert out.returncode == 2 and "admin credential" in out.stderr


def test_demo_prints_two_links(served: tuple[str, Path, subprocess.Popen[str]]) -> None:
    _, _, proc = served
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and sum("/hearing?token=" in x for x in lines) < 2:
        lines.append(proc.stdout.readline())
    assert sum("/hearing?token=" in x for x in lines) == 2, lines
