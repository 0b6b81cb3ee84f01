"""Where the OBS password comes from, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.wire import Heartbeat, ObsStatus, decode, encode
from slave_agent.obs.settings import ObsConnectionConfig, read_password


def test_password_from_a_private_file_an_env_var_or_nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "obs.password"
    secret.write_text("s3cret\n", encoding="utf-8")
    secret.chmod(0o600)
    assert read_password(ObsConnectionConfig(password_source=f"file:{secret}")) == "s3cret"
    monkeypatch.setenv("OBS_PW", "from-env")
    assert read_password(ObsConnectionConfig(password_source="env:OBS_PW")) == "from-env"
    assert read_password(ObsConnectionConfig()) == ""


def test_unusable_password_sources_say_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "obs.password"
    shared.write_text("s3cret", encoding="utf-8")
    shared.chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        read_password(ObsConnectionConfig(password_source=f"file:{shared}"))
    with pytest.raises(ValueError, match="cannot read password file"):
        read_password(ObsConnectionConfig(password_source=f"file:{tmp_path / 'missing'}"))
    monkeypatch.delenv("NO_SUCH_VAR", raising=False)
    with pytest.raises(ValueError, match="NO_SUCH_VAR"):
        read_password(ObsConnectionConfig(password_source="env:NO_SUCH_VAR"))
    with pytest.raises(ValueError, match="password_source"):
        ObsConnectionConfig(password_source="s3cret")  # a bare password is refused


def test_obs_status_tolerates_fields_it_does_not_know() -> None:
    """A later slave may add OBS fields; an older master must still take its heartbeats."""
    hb = Heartbeat(node_id="n", court="c", hostname="h", version="1", epoch="e", last_seq=0, sent_ms=0,
                   pub_port=1, router_port=2, obs=ObsStatus(rec_state="up", rec_version="OBS 29.0.2 / websocket 5.1.0"))
    data = hb.model_dump()
    data["obs"]["added_later"] = 1
    again = Heartbeat.model_validate(data)
    assert again.obs.rec_state == "up" and decode(encode(hb)) == hb
    old = {k: v for k, v in hb.model_dump()["obs"].items() if k in ("rec_connected", "current_scene")}
    assert ObsStatus.model_validate(old).rec_state == "disabled"
