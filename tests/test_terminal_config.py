"""terminal/config.py: the kiosk's TOML file, command-line overrides, and re-reading the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminal.config import ConfigError, TerminalConfig, build_parser, config_from_args, load_config


def test_defaults_suit_a_kiosk() -> None:
    config = TerminalConfig()
    assert config.source == "0" and not config.headless and config.fullscreen
    assert config.backoff_initial <= config.backoff_max <= config.backoff_long_max


def test_file_then_command_line(tmp_path: Path) -> None:
    path = tmp_path / "terminal.toml"
    path.write_text(
        "[terminal]\n"
        'server = "https://court.example:8443"\n'
        'code = "abcd efgh"\n'
        "source = 1\n"
        'log = "logs/terminal.log"\n'
        'ice_addresses = ["10.0.0.5"]\n'
        "media_timeout = 4.5\n"
    )
    config = load_config(path)
    assert config.server == "https://court.example:8443"
    assert config.source == "1"  # an integer camera index becomes the device string
    assert config.log == tmp_path / "logs" / "terminal.log"  # relative to the file
    assert config.ice_addresses == ["10.0.0.5"] and config.media_timeout == 4.5
    assert not config.code_fixed

    args = build_parser().parse_args(
        ["--config", str(path), "--source", "testsrc", "--headless", "--code", "WXYZ-2345"]
    )
    config = config_from_args(args)
    assert config.source == "testsrc" and config.headless and config.code == "WXYZ-2345"
    assert config.code_fixed and config.server == "https://court.example:8443"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("nonsense = 1\n", "unknown setting"),
        ('server = "ftp://x"\n', "server"),
        ("fps = 0\n", "fps"),
        ("media_timeout = -1\n", "media_timeout"),
        ('ice_addresses = ["not-an-ip"]\n', "ice_addresses"),
        ('microphone = "usb"\n', "microphone"),
        ("headless = 1\n", "headless"),
        ("backoff_initial = 5\nbackoff_max = 1\n", "backoff_max"),
        ("[terminal\n", "terminal.toml"),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "terminal.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=words):
        load_config(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_the_code_is_re_read_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "terminal.toml"
    path.write_text('code = "AAAA-BBBB"\n')
    config = load_config(path)
    assert config.reload_code() == "AAAA-BBBB"
    path.write_text('code = "CCCC-DDDD"\n')
    assert config.reload_code() == "CCCC-DDDD"
    path.write_text("[broken\n")  # a half-written file keeps the last good code
    assert config.reload_code() == "CCCC-DDDD"
    fixed = load_config(path=None, code="EEEE-FFFF")
    assert fixed.reload_code() == "EEEE-FFFF"


def test_the_sample_kiosk_file_loads() -> None:
    config = load_config(Path(__file__).resolve().parents[1] / "config" / "terminal.toml")
    assert config.server.startswith("https://") and config.code is None
    assert config.state_file == Path("/var/lib/tingshen-terminal/state.json")
