"""Settings: defaults < `config/tingshen.toml` (or `TINGSHEN_CONFIG`) < environment `TINGSHEN_*` < CLI.

Nothing here needs setting for a first run: SQLite and a recordings folder inside the data folder,
loopback only, no STUN/TURN (never a public STUN server: courts run on a closed network).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
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
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data / 'tingshen.db'}"

    @property
    def recordings_dir(self) -> Path:
        return self.data / "recordings"


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
