"""The master's configuration: strict, commented in ``deploy/master.example.toml``.

Precedence: command-line options > the TOML file > environment (``RESTRIKE_MASTER_...``,
e.g. ``RESTRIKE_MASTER_DATABASE_URL``) > defaults. Without a database URL the master keeps
an embedded SQLite file in its data folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from restrike.settings import ConfigError, FileSettings, load_settings

from master.endpoints import Endpoint

__all__ = ["ConfigError", "MasterConfig", "load_master_config", "DEFAULT_MASTER_DIR"]

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

    @field_validator("endpoints")
    @classmethod
    def _endpoints_parse(cls, value: list[str]) -> list[str]:
        for text in value:
            Endpoint.parse(text)  # raises ValueError with the offending entry
        return value

    def url(self) -> str:
        from master.db.store import default_sqlite_url

        return self.database_url or default_sqlite_url(self.data_dir)


def load_master_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> MasterConfig:
    """The configuration from a TOML file (optional), the environment and explicit overrides."""
    return load_settings(MasterConfig, path, overrides)
