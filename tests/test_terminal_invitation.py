"""terminal/invitation.py: exchanging a join code once, and keeping the link on disk."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from terminal.invitation import (
    CodeRefused,
    Invitation,
    InvitationStore,
    ServerUnreachable,
    exchange_code,
)
from tests.conftest import RunningServer, free_port


async def test_a_code_is_exchanged_once_and_the_link_kept(
    server: RunningServer, tmp_path: Path
) -> None:
    hearing = await server.create_hearing("judge:审判长", "defendant:张某", kind="arraignment")
    code = hearing["invites"][1]["code"]
    store = InvitationStore(tmp_path / "state" / "terminal.json")
    invitation = await store.current(server.base_url, code.lower().replace("-", " "))
    assert invitation is not None and invitation.hearing_id == hearing["id"]
    assert invitation.token in invitation.url
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600  # a bearer secret

    # A restarted terminal finds it on disk and does not spend the (used) code again.
    again = InvitationStore(store.path)
    assert await again.current(server.base_url, code) == invitation
    with pytest.raises(CodeRefused) as refused:
        await exchange_code(server.base_url, code)
    assert refused.value.code == "bad-code"

    # Another code, or another server, is not this invitation.
    assert again.matches(server.base_url, "ZZZZ-ZZZZ") is None
    assert again.matches("http://elsewhere:1", code) is None
    again.forget()
    assert not store.path.exists() and again.load() is None


async def test_malformed_and_unknown_codes_are_refused(server: RunningServer) -> None:
    with pytest.raises(CodeRefused, match="malformed"):
        await exchange_code(server.base_url, "0OIL")
    with pytest.raises(CodeRefused) as refused:
        await exchange_code(server.base_url, "ABCD-EFGH")
    assert refused.value.code == "bad-code" and refused.value.retry_after is None


async def test_no_server_is_unreachable() -> None:
    with pytest.raises(ServerUnreachable):
        await exchange_code(f"http://127.0.0.1:{free_port()}", "ABCD-EFGH")


def test_a_damaged_state_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "terminal.json"
    path.write_text("{not json")
    assert InvitationStore(path).load() is None
    store = InvitationStore(path)
    store.save(Invitation("http://s", "ABCD-EFGH", "http://s/h?token=SECRET", "SECRET", "h1"))
    assert InvitationStore(path).load() == store.load()
    assert "SECRET" not in repr(store.load())  # invitations are logged: never their token
