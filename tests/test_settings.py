"""Settings validation: the media addresses and ports (1:1 NAT, `media_ports`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from server.cli import main
from server.settings import CONFIG_DIR, Settings


def settings(**values: Any) -> Settings:
    return Settings(host="127.0.0.1", **values)


def error_of(**values: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        settings(**values)
    return str(caught.value)


def test_defaults_leave_ports_and_addresses_to_aioice() -> None:
    s = settings()
    assert s.media_port_range is None and s.nat_public_addresses == {}
    assert s.keep_private_host is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("40000-40099", (40000, 40099)),
        (" 40000 - 40099 ", (40000, 40099)),
        ("50000", (50000, 50000)),
        ("1024-65535", (1024, 65535)),
    ],
)
def test_media_ports_accepts_a_range(text: str, expected: tuple[int, int]) -> None:
    s = settings(media_ports=text)
    assert s.media_port_range == expected
    assert s.media_ports == f"{expected[0]}-{expected[1]}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("40099-40000", "runs backwards (40099 > 40000)"),
        ("40000-70000", "must lie within 1024-65535"),
        ("80-90", "ports below 1024 need root"),
        ("0-100", "must lie within 1024-65535"),
        ("40000:40099", 'is not a port range "LOW-HIGH"'),
        ("40000-", 'is not a port range "LOW-HIGH"'),
        ("-5", 'is not a port range "LOW-HIGH"'),
        ("", 'is not a port range "LOW-HIGH"'),
        ("forty", 'is not a port range "LOW-HIGH"'),
    ],
)
def test_media_ports_refuses_bad_ranges(text: str, message: str) -> None:
    assert message in error_of(media_ports=text)


def test_nat_mapping_one_public_address_for_every_media_address() -> None:
    s = settings(ice_addresses=["10.20.0.5", "10.30.0.5"], nat_1_1_mapping="203.0.113.7")
    assert s.nat_public_addresses == {"0.0.0.0": "203.0.113.7"}
    v6 = settings(ice_addresses=["fd00::5"], nat_1_1_mapping="2001:db8::7")
    assert v6.nat_public_addresses == {"::": "2001:db8::7"}


def test_nat_mapping_table_per_local_address() -> None:
    s = settings(
        ice_addresses=["10.20.0.5", "10.30.0.5"],
        nat_1_1_mapping={"10.20.0.5": "203.0.113.7"},
        keep_private_host=True,
    )
    assert s.nat_public_addresses == {"10.20.0.5": "203.0.113.7"}
    assert s.keep_private_host


def test_nat_mapping_on_every_interface_is_checked_when_gathering() -> None:
    # listening on 0.0.0.0 without ice_addresses: the local addresses are not known yet
    s = Settings(host="0.0.0.0", nat_1_1_mapping={"10.9.9.9": "203.0.113.7"})
    assert s.nat_public_addresses == {"10.9.9.9": "203.0.113.7"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"nat_1_1_mapping": "example.com"}, "'example.com' is not an IP address"),
        ({"nat_1_1_mapping": "0.0.0.0"}, "0.0.0.0 cannot be a public address"),
        ({"nat_1_1_mapping": "224.0.0.1"}, "224.0.0.1 cannot be a public address"),
        ({"nat_1_1_mapping": "2001:db8::7"}, "2001:db8::7 is IPv6, but no media address is"),
        ({"nat_1_1_mapping": {}}, "the table is empty"),
        (
            {"nat_1_1_mapping": {"10.0.0.9": "203.0.113.7"}},
            "10.0.0.9 is not a media address (media addresses: 127.0.0.1; set ice_addresses)",
        ),
        ({"nat_1_1_mapping": {"127.0.0.1": "2001:db8::7"}}, "are not of the same IP version"),
        ({"nat_1_1_mapping": {"127.0.0.1": "127.0.0.1"}}, "127.0.0.1 is mapped to itself"),
        ({"nat_1_1_mapping": {"::": "2001:db8::7"}}, ":: cannot be a local address"),
        ({"nat_1_1_mapping": {"127.0.0.1": "nope"}}, "'nope' is not an IP address"),
    ],
)
def test_nat_mapping_refuses_bad_addresses(values: dict[str, Any], message: str) -> None:
    assert message in error_of(**values)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINGSHEN_MEDIA_PORTS", "40000-40099")
    monkeypatch.setenv("TINGSHEN_NAT_1_1_MAPPING", '{"127.0.0.1": "203.0.113.7"}')
    monkeypatch.setenv("TINGSHEN_KEEP_PRIVATE_HOST", "true")
    s = settings()
    assert s.media_port_range == (40000, 40099)
    assert s.nat_public_addresses == {"127.0.0.1": "203.0.113.7"}
    assert s.keep_private_host
    monkeypatch.setenv("TINGSHEN_NAT_1_1_MAPPING", "203.0.113.7")
    assert settings().nat_public_addresses == {"0.0.0.0": "203.0.113.7"}


def test_serve_names_the_bad_setting_instead_of_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TINGSHEN_MEDIA_PORTS", "40099-40000")
    aioice = logging.getLogger("aioice")
    level = aioice.level
    try:
        assert main(["serve", "--port", "0"]) == 2
    finally:
        aioice.setLevel(level)  # main() configures logging for the process
    err = capsys.readouterr().err
    assert err.strip() == (
        "tingshen: invalid settings: media_ports: '40099-40000' runs backwards (40099 > 40000)"
    )


def test_the_commented_samples_in_tingshen_toml_are_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uncommenting the documented media samples of config/tingshen.toml gives valid settings."""
    sample = (CONFIG_DIR / "tingshen.toml").read_text()
    wanted = ("ice_addresses", "media_ports", "nat_1_1_mapping = {", "keep_private_host")
    lines = [
        line.removeprefix("# ")
        for line in sample.splitlines()
        if line.startswith(tuple(f"# {w}" for w in wanted))
    ]
    assert len(lines) == 4, lines
    config = tmp_path / "tingshen.toml"
    config.write_text(sample + "\n" + "\n".join(lines) + "\n")
    monkeypatch.setenv("TINGSHEN_CONFIG", str(config))
    s = Settings()
    assert s.media_port_range == (40000, 40099)
    assert s.nat_public_addresses == {"10.20.0.5": "203.0.113.7"}
