"""The master's configuration: strict, commented in ``deploy/master.example.toml``.

Precedence: command-line options > the TOML file > environment (``RESTRIKE_MASTER_...``,
e.g. ``RESTRIKE_MASTER_DATABASE_URL``) > defaults. Without a database URL the master keeps
an embedded SQLite file in its data folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from master.endpoints import Endpoint
from runtime.settings import ConfigError, FileSettings, load_settings

__all__ = ["DEFAULT_MASTER_DIR", "ConfigError", "MasterConfig", "load_master_config"]

DEFAULT_MASTER_DIR = Path("data/master")


class MasterConfig(FileSettings):
    model_config = SettingsConfigDict(env_prefix="RESTRIKE_MASTER_", extra="forbid")

    data_dir: Path = Field(DEFAULT_MASTER_DIR, title="Folder of the embedded SQLite database")
    database_url: str | None = Field(
        None,
        title="Central database",
        description="e.g. postgresql+psycopg://restrike@dbhost/restrike; embedded SQLite when unset",
    )
    endpoints: list[str] = Field(
        default_factory=list, title="Courts given by hand", description="HOST:PUB_PORT:ROUTER_PORT each"
    )
    mdns: bool = Field(True, title="Find courts by mDNS")
    mdns_interface: str | None = Field(None, title="IP address of the interface to browse on")
    heartbeat_seconds: float = Field(
        1.0, gt=0, le=30,
        title="Assumed heartbeat interval until a court's first heartbeat states its own (3 missed = offline)",
    )
    page_size: int = Field(2000, ge=10, le=20_000, title="Events per catch-up page")
    held_events_per_court: int = Field(
        5000, ge=10, le=1_000_000,
        title="Events of one court held in memory while they wait for the central database",
        description="Past it, newer events stay in the court's database and are fetched once the database catches up",
    )
    clip_cache_mb: int = Field(
        5000, ge=10, le=10_000_000, title="Largest size of the replay clip cache (data_dir/clips), least recently used out"
    )
    ffmpeg: str = Field("ffmpeg", min_length=1, title="ffmpeg executable that remuxes clips to MP4 for the browser")
    http_host: str = Field("0.0.0.0", title="Address the web console and overlay listen on")
    http_port: int = Field(8080, ge=0, le=65535, title="Port of the web console and overlay (0: no web console)")
    session_hours: float = Field(12.0, gt=0, le=24 * 30, title="A console sign-in lasts this long")
    curve: bool = Field(
        True,
        title="Encrypt and authenticate the links to the courts (CURVE)",
        description="false must match courts running without CURVE; anyone on the network can then read and command them",
    )
    keys_dir: Path | None = Field(
        None,
        title="Folder of the master's key pair (master.key, master.key_secret)",
        description="<data_dir>/keys when unset; `restrike keys init master` makes the pair",
    )

    @field_validator("endpoints")
    @classmethod
    def _endpoints_parse(cls, value: list[str]) -> list[str]:
        for text in value:
            Endpoint.parse(text)  # raises ValueError with the offending entry
        return value

    @model_validator(mode="after")
    def _a_page_fits(self) -> MasterConfig:
        if self.held_events_per_court < self.page_size:
            raise ValueError(
                f"held_events_per_court ({self.held_events_per_court}) must be at least page_size ({self.page_size}): "
                "a catch-up page has to fit"
            )
        return self

    @model_validator(mode="after")
    def _endpoints_name_their_node(self) -> MasterConfig:
        if self.curve:
            bare = [text for text in self.endpoints if Endpoint.parse(text).node_id is None]
            if bare:
                raise ValueError(
                    f"endpoint {bare[0]!r} needs its court's node id under CURVE, e.g. court-3@{bare[0]}: "
                    "the master talks to a court only with the key approved for its node"
                )
        return self

    @property
    def keys_folder(self) -> Path:
        return self.keys_dir or self.data_dir / "keys"

    def url(self) -> str:
        from master.db.store import default_sqlite_url

        return self.database_url or default_sqlite_url(self.data_dir)


def load_master_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> MasterConfig:
    """The configuration from a TOML file (optional), the environment and explicit overrides."""
    return load_settings(MasterConfig, path, overrides)
