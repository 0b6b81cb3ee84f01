"""The slave agent's configuration: a strict, self-documenting tree read from TOML and the environment.

Precedence: command-line options > the TOML file > environment (``RESTRIKE_SLAVE_...``,
``__`` between levels, e.g. ``RESTRIKE_SLAVE_UDP__PORT=6000``) > defaults. Unknown keys are errors, so a typo never passes silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import SettingsConfigDict

from restrike.settings import ConfigError, FileSettings, load_settings

__all__ = ["ConfigError", "SlaveConfig", "load_config", "DEFAULT_DATA_DIR"]

DEFAULT_DATA_DIR = Path("data/slave")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NodeConfig(_Section):
    node_id: str | None = Field(
        None,
        title="Node id",
        description="Stable id of this court laptop; generated and kept in the database when unset",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
    )
    court: str = Field("Court 1", title="Court name shown on the master console", min_length=1, max_length=64)


class UdpConfig(_Section):
    host: str = Field("0.0.0.0", title="Address to listen on for the scoring software")
    port: int = Field(8888, ge=1, le=65535, title="UDP port the scoring software sends to")
    receive_buffer_bytes: int = Field(
        8 * 1024 * 1024, ge=65536, le=256 * 1024 * 1024, title="Kernel receive buffer (absorbs bursts)"
    )
    queue_size: int = Field(
        100_000, ge=100, le=10_000_000, title="Datagrams held in memory while the database is busy"
    )


class StoreConfig(_Section):
    max_batch: int = Field(1000, ge=1, le=100_000, title="Most datagrams committed in one transaction")
    synchronous: Literal["FULL", "NORMAL"] = Field(
        "FULL",
        title="SQLite durability",
        description="FULL survives a power cut without losing a committed event; NORMAL is faster",
    )
    retry_seconds: float = Field(0.5, gt=0, le=60, title="Wait before retrying a locked or full database")


class PublisherConfig(_Section):
    host: str = Field("0.0.0.0", title="Address the ZeroMQ sockets bind to")
    pub_port: int = Field(5570, ge=1, le=65535, title="PUB port: live events and heartbeats")
    router_port: int = Field(5571, ge=1, le=65535, title="ROUTER port: catch-up and commands")
    heartbeat_seconds: float = Field(
        1.0, gt=0, le=30, title="Heartbeat interval (sent in each heartbeat, so the master adapts)"
    )
    mdns: bool = Field(True, title="Advertise this court over mDNS")
    mdns_interface: str | None = Field(None, title="IP address to advertise (all interfaces when unset)")


class SlaveConfig(FileSettings):
    """Everything a court laptop needs; every field has a working default."""

    model_config = SettingsConfigDict(
        env_prefix="RESTRIKE_SLAVE_", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: Path = Field(DEFAULT_DATA_DIR, title="Folder of the SQLite database")
    node: NodeConfig = NodeConfig()
    udp: UdpConfig = UdpConfig()
    store: StoreConfig = StoreConfig()
    publisher: PublisherConfig = PublisherConfig()


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> SlaveConfig:
    """The configuration from a TOML file (optional), the environment and explicit overrides."""
    return load_settings(SlaveConfig, path, overrides)
