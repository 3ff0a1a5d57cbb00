"""Settings: defaults < `config/tingshen.toml` (or `TINGSHEN_CONFIG`) < environment `TINGSHEN_*` < CLI.

Nothing here needs setting for a first run: SQLite and a recordings folder inside the data folder,
loopback only, no STUN/TURN (never a public STUN server: courts run on a closed network).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "config"
WEB_DIR = REPO_ROOT / "web"


def _config_file() -> Path:
    return Path(os.environ.get("TINGSHEN_CONFIG", CONFIG_DIR / "tingshen.toml"))


class IceServer(BaseModel):
    """An ICE server handed to clients and used by the server's own peer connections."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None


class Court(BaseModel):
    code: str = Field(pattern=r"^[a-z0-9-]{2,32}$")
    name: str
    name_en: str = ""
    level: Literal["intermediate", "county"] = "county"


class Settings(BaseSettings):
    """Tingshen's settings; see config/tingshen.toml for the documented defaults."""

    model_config = SettingsConfigDict(env_prefix="TINGSHEN_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    data: Path = Path("data")
    #: Public base URL put in invitation links; default http://HOST:PORT.
    public_url: str | None = None
    #: SQLAlchemy URL; default SQLite in the data folder.
    database_url: str | None = None
    #: Local addresses the media sockets bind to and advertise as ICE host candidates.
    #: Default: the listening host when it is a concrete address, else every interface.
    ice_addresses: list[str] | None = None
    #: 1:1 NAT (like Janus's `nat_1_1_mapping`): the public address the server's offers carry in
    #: place of its local media address, while the sockets stay bound to the local one. One
    #: address (for every media address of its family), or a table {local = public}.
    nat_1_1_mapping: str | dict[str, str] | None = None
    #: With `nat_1_1_mapping`: advertise the local (private) address as well as the public one.
    keep_private_host: bool = False
    #: UDP ports for the server's media sockets, "LOW-HIGH" (inclusive): one port per participant
    #: connected at once, per media address. Default: any port the kernel picks.
    media_ports: str | None = None
    ice_servers: list[IceServer] = Field(default_factory=list)
    #: TURN relay (coturn with `use-auth-secret`): each client gets short-lived credentials for
    #: these URLs in its `welcome`, made with this shared secret (config/coturn.conf).
    turn_urls: list[str] = Field(default_factory=list)
    turn_secret: str | None = None
    turn_ttl_seconds: int = Field(default=6 * 3600, ge=60, le=7 * 24 * 3600)
    token_ttl_hours: float = Field(default=72.0, gt=0, le=24 * 365)
    keyframe_interval: float = Field(default=0.3, gt=0, le=5)
    #: Redundant audio (RFC 2198) toward subscribers that negotiate it: "auto" while a
    #: subscriber's receiver reports show loss, "always", or "off" (not even offered).
    audio_redundancy: Literal["auto", "always", "off"] = "auto"
    #: "rtp": the forwarder (production). "mediarelay": aiortc's decode/re-encode relay, kept
    #: only as the benchmark's baseline.
    relay_mode: Literal["rtp", "mediarelay"] = "rtp"
    max_participants: int = Field(default=100, ge=2, le=1000)
    #: A participant whose link drops keeps its place this long (a rejoin takes it back).
    reconnect_grace_seconds: float = Field(default=30.0, ge=0, le=600)
    #: How often each participant's link is sampled onto the timeline (network evidence).
    network_sample_seconds: float = Field(default=5.0, ge=0.5, le=60)
    #: The largest exhibit file a presenter may register during a hearing.
    exhibit_max_bytes: int = Field(default=200 * 1024 * 1024, ge=1024, le=4 * 1024**3)
    #: Render the composite ("what the court saw") in the background when a hearing ends.
    render_after_hearing: bool = True
    courts_file: Path = CONFIG_DIR / "courts.toml"
    # -- backup (server/backup.py) -------------------------------------------------------------
    #: Replica folder (another disk, an NFS mount) that receives each segment soon after it closes.
    backup_dir: Path | None = None
    #: Seconds between two looks at the manifests for newly closed files to replicate.
    backup_interval: float = Field(default=5.0, gt=0, le=3600)
    #: Hours between two scheduled fixity checks of primary and replicas (0: on demand only).
    fixity_interval_hours: float = Field(default=24.0, ge=0, le=24 * 366)
    #: S3-compatible replica through aiobotocore, used when a bucket is set.
    s3_bucket: str | None = None
    s3_prefix: str = "tingshen/"
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None

    @field_validator("ice_addresses")
    @classmethod
    def _check_addresses(cls, value: list[str] | None) -> list[str] | None:
        for address in value or []:
            ipaddress.ip_address(address)
        return value

    @field_validator("media_ports")
    @classmethod
    def _check_media_ports(cls, value: str | None) -> str | None:
        if value is not None:
            low, high = _port_range(value)
            value = f"{low}-{high}"
        return value

    @field_validator("nat_1_1_mapping")
    @classmethod
    def _check_nat_mapping(cls, value: str | dict[str, str] | None) -> str | dict[str, str] | None:
        if isinstance(value, str):
            return str(_unicast(value, "public"))
        if isinstance(value, dict):
            if not value:
                raise ValueError("nat_1_1_mapping: the table is empty")
            mapping: dict[str, str] = {}
            for local, public in value.items():
                private, outside = _unicast(local, "local"), _unicast(public, "public")
                if private.version != outside.version:
                    raise ValueError(
                        f"nat_1_1_mapping: {local} and {public} are not of the same IP version"
                    )
                if private == outside:
                    raise ValueError(f"nat_1_1_mapping: {local} is mapped to itself")
                mapping[str(private)] = str(outside)
            return mapping
        return value

    @model_validator(mode="after")
    def _check_nat_against_addresses(self) -> Settings:
        local = self.effective_ice_addresses
        mapping = self.nat_1_1_mapping
        if mapping is None or local is None:
            return self  # every interface: which ones exist is only known when gathering
        if isinstance(mapping, str):
            version = ipaddress.ip_address(mapping).version
            if not any(ipaddress.ip_address(a).version == version for a in local):
                raise ValueError(
                    f"nat_1_1_mapping: {mapping} is IPv{version}, but no media address is "
                    f"(media addresses: {', '.join(local)})"
                )
            return self
        unknown = [a for a in mapping if a not in local]
        if unknown:
            raise ValueError(
                f"nat_1_1_mapping: {', '.join(unknown)} is not a media address "
                f"(media addresses: {', '.join(local)}; set ice_addresses)"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    # -- derived -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host if self.host not in ("0.0.0.0", "::") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def effective_ice_addresses(self) -> list[str] | None:
        """None means: let aioice use every interface."""
        if self.ice_addresses is not None:
            return self.ice_addresses
        if self.host in ("0.0.0.0", "::", ""):
            return None
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return None
        return [self.host]

    @property
    def media_port_range(self) -> tuple[int, int] | None:
        """`media_ports` as (low, high), inclusive; None: any port."""
        return None if self.media_ports is None else _port_range(self.media_ports)

    @property
    def nat_public_addresses(self) -> dict[str, str]:
        """Local media address -> public address; "0.0.0.0" / "::" stand for any of that family."""
        mapping = self.nat_1_1_mapping
        if isinstance(mapping, str):
            return {"::" if ":" in mapping else "0.0.0.0": mapping}
        return dict(mapping or {})

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data / 'tingshen.db'}"

    @property
    def recordings_dir(self) -> Path:
        return self.data / "recordings"


def _port_range(text: str) -> tuple[int, int]:
    """ "40000-40099" -> (40000, 40099); one port alone is a range of one."""
    match = re.fullmatch(r"\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?", text)
    if match is None:
        raise ValueError(
            f'media_ports: {text!r} is not a port range "LOW-HIGH" (e.g. "40000-40099")'
        )
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if low > high:
        raise ValueError(f"media_ports: {text!r} runs backwards ({low} > {high})")
    if low < 1024 or high > 65535:
        raise ValueError(
            f"media_ports: {text!r} must lie within 1024-65535 (ports below 1024 need root)"
        )
    return low, high


def _unicast(text: str, what: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A concrete unicast IP address, or a ValueError naming the setting."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"nat_1_1_mapping: {text!r} is not an IP address") from None
    if address.is_unspecified or address.is_multicast:
        raise ValueError(f"nat_1_1_mapping: {text} cannot be a {what} address")
    return address


def load_courts(path: Path) -> list[Court]:
    """The courts of the prefecture (config/courts.toml); the first intermediate court is default."""
    with path.open("rb") as f:
        raw: dict[str, Any] = tomllib.load(f)
    courts = [Court(**entry) for entry in raw.get("court", [])]
    if not courts:
        raise ValueError(f"{path}: no [[court]] entries")
    codes = [c.code for c in courts]
    if len(set(codes)) != len(codes):
        raise ValueError(f"{path}: duplicate court codes")
    return courts
