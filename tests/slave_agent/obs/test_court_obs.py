"""Both OBS connections inside a real agent: heartbeat fields, sessions from OBS's own output events."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from pathlib import Path

import pytest

from restrike.headless_obs import HeadlessObs
from restrike.ports import free_port
from slave_agent.app import SlaveAgent
from slave_agent.config import SlaveConfig
from slave_agent.obs.supervisor import ConnectionState, ObsUnavailable, RequestFailed
from tests.support import court_keys

pytestmark = pytest.mark.slow


def agent_config(tmp_path: Path, rec: HeadlessObs | None, streamer: HeadlessObs | None) -> SlaveConfig:
    def connection(obs: HeadlessObs | None) -> dict[str, object]:
        return {"enabled": False} if obs is None else {"port": obs.port, "keepalive_seconds": 0.5}

    court_keys(tmp_path / "court")
    return SlaveConfig(
        data_dir=tmp_path / "court",
        node={"node_id": "court-obs", "court": "Court 9"},
        udp={"host": "127.0.0.1", "port": free_port()},
        publisher={"host": "127.0.0.1", "pub_port": free_port(), "router_port": free_port(), "mdns": False},
        obs={"rec": connection(rec), "str": connection(streamer)},
        ivr={"videos_root": str(tmp_path / "videos")},
    )


async def _until(predicate: object, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.02)


def test_heartbeat_shows_both_connections_and_recording_opens_a_session(
    tmp_path: Path, obs_pair: tuple[HeadlessObs, HeadlessObs]
) -> None:
    rec, streamer = obs_pair

    async def main() -> None:
        agent = SlaveAgent(agent_config(tmp_path, rec, streamer))
        tournament = agent.store.create_tournament("Open")
        agent.store.add_day(tournament, 1, "2026-12-03")
        agent.store.activate_day(tournament, 1)
        await agent.async_startup()
        try:
            assert agent.obs is not None and agent.obs.rec is not None and agent.obs.str is not None
            await agent.obs.rec.async_wait_up(15)
            await agent.obs.str.async_wait_up(15)
            assert agent.publisher is not None
            status = agent.publisher.heartbeat().obs
            assert status.rec_state == status.str_state == "up" and status.rec_connected and status.str_connected
            assert status.rec_version and status.rec_version.startswith("OBS ") and "websocket 5." in status.rec_version
            assert status.current_scene == "LIVE_SCENE" and not status.recording
            path = await agent.obs.rec.async_start_record()
            await _until(lambda: agent.publisher.heartbeat().obs.recording)
            await agent.obs.rec.async_stop_record()
            await agent.obs.async_stop()  # flushes the session writes
            rows = agent.store.conn.execute(
                "SELECT session_type, session_number, end_ms IS NOT NULL, interruption_reason, output_path "
                "FROM obs_sessions"
            ).fetchall()
            assert rows == [("recording", 1, 1, None, path)]
        finally:
            await agent.async_shutdown()

    asyncio.run(main())


def test_disabled_and_absent_obs_never_stop_ingest(tmp_path: Path) -> None:
    async def main() -> None:
        cfg = agent_config(tmp_path, None, None)
        cfg = cfg.model_copy(update={"obs": cfg.obs.model_copy(update={"str": cfg.obs.str.model_copy(
            update={"enabled": True, "port": free_port()})})})
        agent = SlaveAgent(cfg)
        await agent.async_startup()
        try:
            assert agent.obs is not None and agent.obs.rec is None and agent.obs.str is not None
            await _until(lambda: "cannot reach" in (agent.obs.str.snapshot.reason or ""))
            assert agent.obs.str.snapshot.state is ConnectionState.DOWN
            status = agent.publisher.heartbeat().obs if agent.publisher else None
            assert status is not None and status.rec_state == "disabled" and status.str_state == "down"
            assert status.str_reason and "cannot reach" in status.str_reason
            assert agent.ingest.address is not None
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for n in range(50):
                sock.sendto(f"hl1;{n}".encode(), agent.ingest.address)
            sock.close()
            await _until(lambda: agent.ingest.stats.stored_events == 50, 5)
        finally:
            await agent.async_shutdown()
        conn = sqlite3.connect(tmp_path / "court" / "restrike-slave.sqlite3")
        assert conn.execute("SELECT COUNT(*) FROM pss_events_v2").fetchone()[0] == 50
        conn.close()

    asyncio.run(main())


def test_the_courts_obs_commands(tmp_path: Path, obs_pair: tuple[HeadlessObs, HeadlessObs]) -> None:
    """What the master's commands will call: recording, replay buffer, scenes, replay, reconnect."""
    rec, streamer = obs_pair

    async def main() -> None:
        cfg = agent_config(tmp_path, rec, streamer)
        agent = SlaveAgent(cfg.model_copy(update={"ivr": cfg.ivr.model_copy(update={
            "player_arguments": ["--no-config", "--vo=null", "--ao=null", "--keep-open=yes"]})}))
        await agent.async_startup()
        try:
            assert agent.actions is not None and agent.obs is not None and agent.obs.rec and agent.obs.str
            await agent.obs.rec.async_wait_up(15)
            await agent.obs.str.async_wait_up(15)
            path = await agent.actions.async_recording(True)
            assert path.endswith(".mkv") and agent.obs.rec.snapshot.recording
            await agent.actions.async_replay_buffer(True)
            assert agent.obs.rec.snapshot.replay_buffer
            await agent.actions.async_scene("ivr")
            await _until(lambda: agent.obs.str.snapshot.current_scene == "IVR_SCENE")
            await agent.actions.async_scene("LIVE_SCENE")
            await _until(lambda: agent.obs.str.snapshot.current_scene == "LIVE_SCENE")
            with pytest.raises(RequestFailed):
                await agent.actions.async_scene("NO_SUCH_SCENE")
            assert await agent.actions.async_mute(True) == []  # no inputs configured to mute
            await asyncio.sleep(1.5)  # a clip needs seconds of video
            replay = await agent.actions.async_replay()
            assert replay.trigger.source == "master" and replay.clip_path
            assert (await agent.actions.async_review_over()).outcome in ("done", "partial")
            await agent.actions.async_replay_buffer(False)
            assert await agent.actions.async_recording(False) == path
            states: list[ConnectionState] = []
            agent.obs.rec.on_state(lambda before, after: states.append(after.state))
            await agent.actions.async_reconnect("rec")
            await _until(lambda: ConnectionState.CONNECTING in states and states[-1] is ConnectionState.UP)
        finally:
            await agent.async_shutdown()

    asyncio.run(main())


def test_commands_to_a_disabled_connection_say_so(tmp_path: Path) -> None:
    async def main() -> None:
        agent = SlaveAgent(agent_config(tmp_path, None, None))
        await agent.async_startup()
        try:
            assert agent.actions is not None
            with pytest.raises(ObsUnavailable, match="not configured"):
                await agent.actions.async_recording(True)
            with pytest.raises(ObsUnavailable, match="OBS_STR"):
                await agent.actions.async_scene("live")
        finally:
            await agent.async_shutdown()

    asyncio.run(main())


def test_a_clip_obs_wrote_without_saying_so_is_found(tmp_path: Path, obs_pair: tuple[HeadlessObs, HeadlessObs]) -> None:
    """OBS 29 was seen writing a clip with no ReplayBufferSaved: the director then asks OBS for its last clip."""
    import time

    import obsws_python as obsws

    from slave_agent.obs.director import _async_saved_clip

    rec = obs_pair[0]

    async def main() -> None:
        agent = SlaveAgent(agent_config(tmp_path, rec, None))
        await agent.async_startup()
        try:
            assert agent.actions is not None and agent.obs is not None and agent.obs.rec is not None
            await agent.obs.rec.async_wait_up(15)
            if not agent.obs.rec.snapshot.recording:
                await agent.actions.async_recording(True)
            if agent.obs.rec.snapshot.replay_buffer:  # from an earlier test: start it afresh
                await agent.actions.async_replay_buffer(False)
            await agent.actions.async_replay_buffer(True)
            await asyncio.sleep(1.5)  # a clip needs seconds of video
            assert await _async_saved_clip(agent.obs.rec, time.time(), 0.5) is None  # nothing new yet
            asked = time.time()
            other = obsws.ReqClient(host="127.0.0.1", port=rec.port, password="", timeout=5)
            try:
                other.save_replay_buffer()  # saved behind the agent's back: no waiter hears the event
            finally:
                other.disconnect()
            found = await _async_saved_clip(agent.obs.rec, asked, 10)
            assert found is not None and Path(found).stat().st_size > 0 and Path(found).stat().st_mtime >= asked - 0.5
            await agent.actions.async_replay_buffer(False)
            await agent.actions.async_recording(False)
        finally:
            await agent.async_shutdown()

    asyncio.run(main())
