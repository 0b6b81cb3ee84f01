"""The slave agent's configuration: a strict, self-documenting tree read from TOML and the environment.

Precedence: command-line options > the TOML file > environment (``RESTRIKE_SLAVE_...``,
``__`` between levels, e.g. ``RESTRIKE_SLAVE_UDP__PORT=6000``) > defaults. Unknown keys are errors, so a typo never passes silently.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import SettingsConfigDict

from runtime.curve import check_public_key
from runtime.settings import ConfigError, FileSettings, load_settings
from slave_agent.obs.settings import IvrConfig, ObsConfig

__all__ = ["DEFAULT_DATA_DIR", "ConfigError", "SlaveConfig", "load_config"]

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
    shared_port: bool = Field(
        False,
        title="Let other programs listen on the same UDP port",
        description="Off: a second listener is refused at start. On: unicast datagrams reach only one listener",
    )
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


class OperatorConfig(_Section):
    enabled: bool = Field(True, title="Serve the operator page and the replay API (restrike slave run only)")
    host: str = Field("127.0.0.1", title="Address of the operator page (127.0.0.1: this laptop only)")
    port: int = Field(8090, ge=1, le=65535, title="Port of the operator page and of restrike slave replay")


class PublisherConfig(_Section):
    host: str = Field("0.0.0.0", title="Address the ZeroMQ sockets bind to")
    pub_port: int = Field(5570, ge=1, le=65535, title="PUB port: live events and heartbeats")
    router_port: int = Field(5571, ge=1, le=65535, title="ROUTER port: catch-up and commands")
    heartbeat_seconds: float = Field(
        1.0, gt=0, le=30, title="Heartbeat interval (sent in each heartbeat, so the master adapts)"
    )
    mdns: bool = Field(True, title="Advertise this court over mDNS")
    mdns_interface: str | None = Field(None, title="IP address to advertise (all interfaces when unset)")


class ResyncConfig(_Section):
    sender_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        title="The scoring software's listen port for pull requests",
        description="TkStrike's 'listen port'; the agent asks it for the match state at start and "
        "when a new sender appears. Unset: never ask",
    )
    sender_host: IPv4Address | None = Field(
        None,
        title="Address of the scoring computer, asked at start",
        description="Unset: the agent asks the first sender it hears from",
    )
    answer_seconds: float = Field(
        2.0, gt=0, le=30, title="Wait for answers this long before logging what came (nothing waits on it)"
    )

class SecurityConfig(_Section):
    curve: bool = Field(
        True,
        title="Encrypt and authenticate the ZeroMQ sockets (CURVE)",
        description="false lets anyone on the network read this court's events and command it; warned at every start",
    )
    keys_dir: Path | None = Field(
        None,
        title="Folder of this court's key pair (court.key, court.key_secret) and of masters/*.key",
        description="<data_dir>/keys when unset; `restrike keys init court` makes the pair",
    )
    master_keys: list[str] = Field(
        default_factory=list,
        title="Public keys of the masters this court answers (besides the files in <keys_dir>/masters/)",
    )

    @field_validator("master_keys")
    @classmethod
    def _keys_valid(cls, value: list[str]) -> list[str]:
        return [check_public_key(key) for key in value]  # BadKey is a ValueError: a config error naming the field


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
    obs: ObsConfig = ObsConfig()
    ivr: IvrConfig = IvrConfig()
    resync: ResyncConfig = ResyncConfig()
    operator: OperatorConfig = OperatorConfig()
    security: SecurityConfig = SecurityConfig()

    @property
    def keys_folder(self) -> Path:
        return self.security.keys_dir or self.data_dir / "keys"


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> SlaveConfig:
    """The configuration from a TOML file (optional), the environment and explicit overrides."""
    return load_settings(SlaveConfig, path, overrides)
