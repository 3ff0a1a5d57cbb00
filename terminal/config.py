"""The terminal's settings: a TOML file for the unattended kiosk, overridden by the command line.

How this works: :class:`TerminalConfig` holds every setting with a default that suits a kiosk.
:func:`load_config` reads the ``[terminal]`` table of a TOML file (or the top level, if there is no
such table), checks each key against the fields, and applies command-line overrides last. The app
re-reads the file (:meth:`TerminalConfig.reload_code`) whenever it needs a new join code, so an
operator or a provisioning script can drop the code of the next scheduled hearing into the file
without touching the running terminal.

Example (``config/terminal.toml``)::

    [terminal]
    server = "https://tingshen.gz.court:8443"
    code = "ABCD-EFGH"
    source = "0"                 # camera index, a video file, an RTSP URL, or "testsrc"
    microphone = "auto"          # "auto", "none", or "alsa:hw:1" / "pulse:default"
    log = "/var/log/tingshen-terminal.log"
    state_file = "/var/lib/tingshen-terminal/state.json"
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["ConfigError", "TerminalConfig", "build_parser", "config_from_args", "load_config"]

DEFAULT_SERVER = "http://127.0.0.1:8080"


class ConfigError(ValueError):
    """A setting is missing, unknown or out of range; the message names it."""


def _default_state_file() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tingshen" / "terminal.json"


@dataclass
class TerminalConfig:
    """Every setting of the terminal (see the module docstring for the file format)."""

    #: The Tingshen server, e.g. ``https://tingshen.court:8443``.
    server: str = DEFAULT_SERVER
    #: The join code of the hearing to join (``ABCD-EFGH``); may be replaced in the file later.
    code: str | None = None
    #: Camera: a device index ("0"), a video file, an RTSP/HTTP URL, or "testsrc" (synthetic).
    source: str = "0"
    #: Microphone: "auto" (PulseAudio, then ALSA "default"), "none", or "FORMAT:DEVICE".
    microphone: str = "auto"
    #: Where the court's sound goes: "auto", "none", or "FORMAT:DEVICE" (PyAV output device).
    speaker: str = "auto"
    width: int = 640
    height: int = 480
    fps: int = 25
    #: No window (a monitor-less box, or tests).
    headless: bool = False
    fullscreen: bool = True
    #: Log file (rotated); None logs to stderr.
    log: Path | None = None
    #: Where the terminal keeps the link it got for its code, to rejoin after a drop or a restart.
    state_file: Path = field(default_factory=_default_state_file)
    #: A JSON file with the live status, rewritten every second (for monitoring); None: off.
    status_file: Path | None = None
    #: A JPEG of what the screen shows, rewritten every `snapshot_interval` s (remote support).
    snapshot_file: Path | None = None
    snapshot_interval: float = 2.0
    #: Local addresses to gather ICE candidates on (None: every interface, as aioice does).
    ice_addresses: list[str] | None = None
    #: Seconds to wait for the welcome and for the media path to connect.
    connect_timeout: float = 5.0
    #: Seconds without any media from a publishing participant before reconnecting.
    media_timeout: float = 3.0
    #: Reconnect delays: from `backoff_initial`, doubling, up to `backoff_max`; after
    #: `long_outage` seconds without success, up to `backoff_long_max`.
    backoff_initial: float = 0.5
    backoff_max: float = 2.0
    backoff_long_max: float = 15.0
    long_outage: float = 120.0
    #: Seconds to wait before asking again when the code is refused or the hearing has ended.
    code_retry: float = 10.0
    #: The file this configuration was read from (re-read for a new code).
    path: Path | None = None
    #: True when `code` came from the command line (then the file is not consulted for it).
    code_fixed: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise `ConfigError` naming the first bad setting."""
        if not self.server.startswith(("http://", "https://")):
            raise ConfigError(f"server: expected an http:// or https:// URL, not {self.server!r}")
        if not self.source:
            raise ConfigError("source: empty")
        for name in ("width", "height", "fps"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= 4096:
                raise ConfigError(f"{name}: expected a positive integer, not {value!r}")
        if self.fps > 60:
            raise ConfigError(f"fps: at most 60, not {self.fps}")
        positive = (
            "snapshot_interval",
            "connect_timeout",
            "media_timeout",
            "backoff_initial",
            "backoff_max",
            "backoff_long_max",
            "long_outage",
            "code_retry",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{name}: expected a positive number of seconds, not {value!r}")
        if self.backoff_max < self.backoff_initial:
            raise ConfigError("backoff_max: must not be below backoff_initial")
        for address in self.ice_addresses or []:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ConfigError(f"ice_addresses: {address!r} is not an IP address") from None
        for name in ("microphone", "speaker"):
            value = getattr(self, name)
            if value not in ("auto", "none") and ":" not in value:
                raise ConfigError(f"{name}: expected 'auto', 'none' or 'FORMAT:DEVICE'")

    @property
    def api_base(self) -> str:
        """The server URL without a trailing slash."""
        return self.server.rstrip("/")

    def reload_code(self) -> str | None:
        """The join code as the config file says now (the operator may have put a new one in)."""
        if self.code_fixed or self.path is None:
            return self.code
        try:
            table = _read_table(self.path)
        except (OSError, ConfigError, tomllib.TOMLDecodeError) as exc:
            logger.warning("config %s not re-read: %s", self.path, exc)
            return self.code
        code = table.get("code")
        if code is not None and not isinstance(code, str):
            logger.warning("config %s: code is not a string", self.path)
            return self.code
        if code != self.code:
            logger.info("config %s: a new join code", self.path)
            self.code = code
        return self.code


_FIELDS = {f.name: f for f in dataclasses.fields(TerminalConfig)}
_PATH_FIELDS = frozenset({"log", "state_file", "status_file", "snapshot_file"})
_FILE_ONLY = frozenset({"path", "code_fixed"})


def _read_table(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        data = tomllib.load(f)
    table = data.get("terminal", data)
    if not isinstance(table, dict):
        raise ConfigError("[terminal] must be a table")
    return table


def _coerce(name: str, value: Any, base: Path | None) -> Any:
    if name in _PATH_FIELDS:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected a path string")
        path = Path(value).expanduser()
        return path if path.is_absolute() or base is None else base / path
    if name == "source" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # `source = 0` in TOML means the first camera
    if name == "ice_addresses":
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(a, str) for a in value)
        ):
            raise ConfigError("ice_addresses: expected a list of address strings")
        return value
    if name in ("headless", "fullscreen"):
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false")
        return value
    if name in ("server", "code", "source", "microphone", "speaker"):
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected a string")
        return value
    return value


def load_config(path: Path | None = None, **overrides: Any) -> TerminalConfig:
    """Settings from `path` (TOML) with `overrides` (non-None values) applied on top.

    Relative paths in the file are taken from the file's folder.
    """
    values: dict[str, Any] = {}
    if path is not None:
        try:
            table = _read_table(path)
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        for name, value in table.items():
            if name not in _FIELDS or name in _FILE_ONLY:
                raise ConfigError(f"{path}: unknown setting {name!r}")
            values[name] = _coerce(name, value, path.parent)
        values["path"] = path
    for name, value in overrides.items():
        if name not in _FIELDS:
            raise ConfigError(f"unknown setting {name!r}")
        if value is not None:
            values[name] = value
    if overrides.get("code") is not None:
        values["code_fixed"] = True
    return TerminalConfig(**values)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The `tingshen terminal` options, added to `parser` (or a new one)."""
    if parser is None:
        parser = argparse.ArgumentParser(
            prog="tingshen terminal", description="the remote defendant's terminal"
        )
    parser.add_argument("--server", help=f"server URL (default {DEFAULT_SERVER})")
    parser.add_argument("--code", help="join code of the hearing, e.g. ABCD-EFGH")
    parser.add_argument(
        "--source", help="camera: device index, video file, RTSP URL, or testsrc (default 0)"
    )
    parser.add_argument("--microphone", help="auto, none, or FORMAT:DEVICE (e.g. alsa:hw:1)")
    parser.add_argument("--speaker", help="auto, none, or FORMAT:DEVICE")
    parser.add_argument("--headless", action="store_true", default=None, help="no window")
    parser.add_argument("--config", type=Path, help="TOML settings file (kiosk)")
    parser.add_argument("--log", type=Path, help="log file (default: stderr)")
    parser.add_argument("--state-file", type=Path, help="where the joined link is kept")
    parser.add_argument("--status-file", type=Path, help="JSON status, rewritten every second")
    parser.add_argument("--snapshot-file", type=Path, help="JPEG of the screen, for support")
    parser.add_argument(
        "--ice-address",
        action="append",
        dest="ice_addresses",
        metavar="ADDRESS",
        help="gather ICE candidates on this local address only (repeatable)",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> TerminalConfig:
    """Settings from parsed `build_parser()` arguments (file first, then the options)."""
    return load_config(
        args.config,
        server=args.server,
        code=args.code,
        source=args.source,
        microphone=args.microphone,
        speaker=args.speaker,
        headless=args.headless,
        log=args.log,
        state_file=args.state_file,
        status_file=args.status_file,
        snapshot_file=args.snapshot_file,
        ice_addresses=args.ice_addresses,
    )
