"""Settings of the two OBS connections and of instant replay: ``[obs.rec]``, ``[obs.str]``, ``[ivr]``.

The WebSocket password never sits in the config file: ``password_source`` names an
environment variable (``env:NAME``) or a file only the agent's user may read
(``file:PATH``). It is read at each connection, so a changed file takes effect at the next
reconnect.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["IvrConfig", "ObsConfig", "ObsConnectionConfig", "ObsProcessConfig", "read_password"]

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ObsProcessConfig(_Section):
    """OBS started and watched by the agent (``[obs.rec.process]``): restarted when it crashes or on command.

    Without ``executable`` the agent only connects to an OBS started otherwise.
    """

    executable: str | None = Field(None, min_length=1, title="OBS program (on PATH or a full path); unset: only connect")
    arguments: list[str] = Field(
        default_factory=lambda: ["--minimize-to-tray", "--disable-shutdown-check"],
        title="Its arguments (profile, scene collection, --websocket_port, --multi for a second OBS)",
    )
    working_dir: Path | None = Field(None, title="Folder it starts in (a portable OBS needs its own)")
    environment: dict[str, str] = Field(
        default_factory=dict, title="Variables set for OBS on top of the agent's own (DISPLAY, HOME, ...)"
    )
    stop_timeout_seconds: float = Field(10.0, gt=0, le=120, title="Wait for OBS to close before killing it")
    start_timeout_seconds: float = Field(30.0, gt=0, le=300, title="Wait for OBS's WebSocket server after a start")
    restart_on_crash: bool = Field(True, title="Start OBS again (with back-off) when it exits by itself")


class ObsConnectionConfig(_Section):
    """One obs-websocket v5 connection."""

    enabled: bool = Field(True, title="Connect to this OBS (events are stored either way)")
    host: str = Field("127.0.0.1", title="Address of OBS's WebSocket server")
    port: int = Field(4455, ge=1, le=65535, title="OBS WebSocket server port")
    password_source: str | None = Field(
        None, pattern=r"^(env|file):.+$", title="Where the WebSocket password is: env:NAME or file:PATH"
    )
    live_scene: str = Field("LIVE_SCENE", min_length=1, title="Scene on air during play")
    ivr_scene: str = Field("IVR_SCENE", min_length=1, title="Scene on air during a video review")
    mute_inputs: list[str] = Field(default_factory=list, title="Audio inputs the mute command silences")
    request_timeout_seconds: float = Field(3.0, gt=0, le=60, title="Longest wait for one answer from OBS")
    keepalive_seconds: float = Field(2.0, gt=0, le=60, title="Idle time after which OBS is asked whether it lives")
    process: ObsProcessConfig = ObsProcessConfig()

    @property
    def runs_obs(self) -> bool:
        """The agent starts this connection's OBS itself."""
        return self.enabled and self.process.executable is not None

    @model_validator(mode="after")
    def _local_process(self) -> ObsConnectionConfig:
        if self.process.executable is not None and self.host not in LOCAL_HOSTS:
            raise ValueError(f"process: the agent can start only an OBS on this laptop, not on {self.host}; "
                             "set host = \"127.0.0.1\" or unset process.executable")
        return self


class ObsConfig(_Section):
    """OBS_REC records and keeps the replay buffer; OBS_STR streams and switches scenes (may be one OBS)."""

    # No field of this class may be annotated with the builtin str: the field below shadows it.
    rec: ObsConnectionConfig = ObsConnectionConfig()
    str: ObsConnectionConfig = ObsConnectionConfig(port=4456)

    @model_validator(mode="after")
    def _one_process_per_obs(self) -> ObsConfig:
        if self.rec.runs_obs and self.str.runs_obs and (self.rec.host, self.rec.port) == (self.str.host, self.str.port):
            raise ValueError("[obs.rec] and [obs.str] reach the same OBS: set only [obs.rec.process] executable "
                             "(OBS_STR then uses the OBS that OBS_REC starts)")
        return self


class IvrConfig(_Section):
    """Where matches and replay clips go, and how a clip is played."""

    videos_root: Path = Field(Path("videos"), title="Root of <Tournament>/<Day N>/ recording folders")
    replay_buffer_seconds: int = Field(20, ge=5, le=600, title="Length of the replay buffer (and of a clip)")
    player: str = Field("mpv", min_length=1, title="Player executable (mpv or compatible JSON IPC)")
    player_arguments: list[str] = Field(
        default_factory=lambda: ["--keep-open=yes", "--fullscreen"],
        title="Extra player arguments (the player waits idle, without a window, between reviews)",
    )
    start_before_end_seconds: float = Field(10.0, ge=0, le=600, title="The clip opens this long before its end")
    step_timeout_seconds: float = Field(10.0, gt=0, le=120, title="Longest wait for one step (clip saved, player up)")


def read_password(cfg: ObsConnectionConfig) -> str:
    """The password now (empty when none is configured); raises ``ValueError`` saying what is wrong.

    A password file that others may read is refused, as ssh refuses such a key.
    """
    if cfg.password_source is None:
        return ""
    kind, _, where = cfg.password_source.partition(":")
    if kind == "env":
        value = os.environ.get(where)
        if value is None:
            raise ValueError(f"environment variable {where} (password_source) is not set")
        return value
    path = Path(where)
    try:
        if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ValueError(f"password file {path} may be read by others; run: chmod 600 {path}")
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read password file {path}: {exc.strerror}") from None
