"""A whole match over UDP into a court agent driving two real OBS and a real mpv.

Checked as the crew would check it: the recording's file (name, folder, playable), the clip
in ``IVR recordings`` opened by mpv at the right position (asked over mpv's IPC), the scenes
as OBS reports them, times and links in SQLite, the sessions, the trigger log, the notices
on PUB; then OBS_REC killed in the middle of the next match, with a master listening: it sees
OBS go down and up, and receives the crash-ended session and the trigger log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import obsws_python as obsws
import psutil
import pytest

from master.db.store import CentralStore
from restrike.headless_obs import HeadlessObs
from restrike.ports import free_port
from shared.wire import IvrNotice
from slave_agent.obs.triggers import TriggerKind, TriggerLog
from tests.obs_peers import MATCH_101, MATCH_102, async_listening_master, central_url, running_court
from tests.support import restrike_exe, wait_until

pytestmark = pytest.mark.slow

def _ffprobe_duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout
    return float(out)


def _scene(obs: HeadlessObs) -> str:
    client = obsws.ReqClient(host="127.0.0.1", port=obs.port, password="", timeout=5)
    try:
        return str(client.get_current_program_scene().current_program_scene_name)
    finally:
        client.disconnect()


@pytest.fixture(scope="module")
def rtmp_server() -> Iterator[str]:
    """A real RTMP receiver (ffmpeg) for OBS_STR's stream."""
    port = free_port()
    server = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-listen", "1", "-i", f"rtmp://127.0.0.1:{port}/live/court", "-c", "copy",
         "-f", "null", "-"], stdin=subprocess.DEVNULL,
    )
    try:
        # Listening, seen without connecting (ffmpeg takes the first connection as its one client).
        wait_until(lambda: any(c.laddr.port == port and c.status == psutil.CONN_LISTEN
                               for c in psutil.net_connections("tcp")), 10, "the RTMP receiver")
        yield f"rtmp://127.0.0.1:{port}/live"
    finally:
        server.kill()
        server.wait(10)


def _steps(log: TriggerLog) -> dict[str, str]:
    return {s.name: s.outcome.value for s in log.steps}


def test_a_whole_match_records_replays_and_links(
    tmp_path: Path, obs_pair: tuple[HeadlessObs, HeadlessObs], rtmp_server: str
) -> None:
    rec, streamer = obs_pair

    async def main() -> None:
        async with running_court(tmp_path, rec, streamer) as court:
            agent = court.agent
            assert agent.obs is not None and agent.obs.str is not None and agent.director is not None
            master = await async_listening_master(court, tmp_path)
            notices: list[IvrNotice] = []  # as the master receives them (over CURVE)

            async def listen() -> None:
                while True:
                    for link in master.links.values():
                        if link.last_ivr is not None and (not notices or notices[-1] is not link.last_ivr):
                            notices.append(link.last_ivr)
                    await asyncio.sleep(0.01)

            listener = asyncio.create_task(listen())
            try:
                # The stream runs (started by the crew); its session times the events.
                await agent.obs.str.async_request(
                    "SetStreamServiceSettings",
                    {"streamServiceType": "rtmp_custom", "streamServiceSettings": {"server": rtmp_server, "key": "court"}},
                )
                await agent.obs.str.async_start_stream()

                # 1. Match loaded and ready: folder, name, recording and replay buffer.
                court.send(*MATCH_101)
                ready = await court.next_log(TriggerKind.MATCH_READY)
                assert ready.outcome == "done", ready
                day_folder = court.videos / "Croatia-Open-2026" / "Day 2"
                assert (day_folder / "IVR recordings").is_dir()
                recording = Path(ready.recording_path or "")
                assert recording == (day_folder / "101_KIM-Tae-hun_KOR_vs_John-SmithJr_USA.mkv").resolve()
                assert ready.blue == "KIM Tae-hun (KOR)" and ready.red == "John Smith/Jr. (USA)"

                # 2. Play, then red challenges: the clip is saved, moved, linked and shown.
                court.send("clk;02:00;start")
                for second in range(4):
                    court.send(f"clk;01:5{9 - second}", f"pt1;{second % 3 + 1}")
                    await asyncio.sleep(1)  # the replay buffer needs seconds of real video to save
                court.send("ch2")
                replay = await court.next_log(TriggerKind.REPLAY)
                assert replay.outcome == "done", replay
                assert replay.trigger.challenge_by == "red"
                clip = Path(replay.clip_path or "")
                assert clip.parent == day_folder / "IVR recordings"
                assert re.fullmatch(r"101_\d{8}T\d{6}Z\.mkv", clip.name) and replay.clip_bytes == clip.stat().st_size
                duration = _ffprobe_duration(clip)
                assert duration >= 3.0
                # Where the player was when it first played (the step's own report), not where it is
                # now: the clip goes on playing while the test probes it, by seconds on a loaded runner.
                opened = next(step for step in replay.steps if step.name == "open_player")
                reported = re.fullmatch(r"playing at ([\d.]+) s", opened.detail or "")
                assert reported, opened
                started = float(reported.group(1))
                assert duration - 2.0 - 0.5 <= started <= duration - 2.0 + 0.5  # opened 2 s before its end
                assert await agent.director.player.async_get("path") == str(clip)
                assert await agent.director.player.async_get("time-pos") >= started - 0.1
                assert _scene(streamer) == "IVR_SCENE" and agent.obs.str.snapshot.current_scene == "IVR_SCENE"
                assert agent.publisher is not None and agent.publisher.heartbeat().obs.ivr_active
                await court.until(lambda: [n.state for n in notices] == ["started"], "the IVR started notice")
                assert notices[0].match_number == "101" and notices[0].clip == clip.name

                # 3. The referee decides: the review ends, live scene back, player closed.
                court.send("ch2;0")
                over = await court.next_log(TriggerKind.REVIEW_OVER)
                assert over.outcome == "done", over
                assert _scene(streamer) == "LIVE_SCENE" and not agent.director.player.is_open
                assert agent.obs.rec is not None and agent.obs.rec.snapshot.replay_buffer
                await court.until(lambda: [n.state for n in notices] == ["started", "ended"], "the IVR ended notice")
                court.send("clk;01:55;start", "win;BLUE", "wmh;KIM Tae-hun;2-0 PTF")

                # 4. The next match ends the previous recording first: a complete, playable file.
                court.send(*MATCH_102)
                second = await court.next_log(TriggerKind.MATCH_READY)
                assert second.outcome == "done", second
                assert _ffprobe_duration(recording) >= 3.5  # the four seconds of play, and more
                assert Path(second.recording_path or "").name == "102_Perica_CRO_vs_Stevica_GER.mkv"
                await agent.obs.str.async_stop_stream()
            finally:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
                await master.async_shutdown()

            # SQLite: clip links, recording and stream times, sessions, the trigger log.
            linked = court.db.execute(
                "SELECT event_code, rec_timestamp, str_timestamp FROM pss_events_v2 WHERE ivr_link = ? ORDER BY seq",
                (str(clip),),
            ).fetchall()
            assert replay.linked_events == len(linked) and len(linked) >= 4
            assert {code for code, _r, _s in linked} >= {"pt1", "clk"}
            assert all(r and s for _c, r, s in linked)  # inside the recording and the stream
            assert replay.clip_span is not None
            outside = court.db.execute(
                "SELECT COUNT(*) FROM pss_events_v2 WHERE ivr_link IS NOT NULL AND received_ms NOT BETWEEN ? AND ?",
                (replay.clip_span.start_ms, replay.clip_span.end_ms),
            ).fetchone()[0]
            assert outside == 0
            sessions = court.db.execute(
                "SELECT session_type, session_number, end_ms IS NULL, interruption_reason, output_path "
                "FROM obs_sessions ORDER BY session_type, session_number"
            ).fetchall()
            assert ("recording", 1, 0, None, str(recording)) in sessions
            assert ("recording", 2, 1, None, second.recording_path) in sessions
            assert ("stream", 1, 0, None, None) in sessions
            assert [s[:2] for s in sessions if s[0] == "replay_buffer"] == [("replay_buffer", 1), ("replay_buffer", 2)]
            kinds = court.db.execute("SELECT kind, outcome, challenge_by, challenge_result FROM ivr_events ORDER BY id")
            assert kinds.fetchall() == [
                ("match_ready", "done", None, None), ("replay", "done", "red", "denied"),
                ("review_over", "done", "red", "denied"), ("match_ready", "done", None, None),
            ]

        listing = subprocess.run(
            [restrike_exe(), "slave", "ivr", "list", "--data-dir", str(court.config.data_dir), "--format", "json"],
            capture_output=True, text=True, timeout=60,
        )
        assert listing.returncode == 0, listing.stderr
        rows = [json.loads(line) for line in listing.stdout.splitlines()]
        assert [r["kind"] for r in rows] == ["match_ready", "replay", "review_over", "match_ready"]
        assert rows[1]["clip_path"] == str(clip) and rows[1]["steps"][0]["step"] == "save_clip"

    asyncio.run(main())


@pytest.mark.expect_error_logs
def test_obs_killed_mid_match_loses_no_event_and_comes_back(
    tmp_path: Path, obs_pair: tuple[HeadlessObs, HeadlessObs], caplog: pytest.LogCaptureFixture
) -> None:
    rec, streamer = obs_pair

    central = central_url(tmp_path)
    seen_by_master: list[str] = []

    async def main() -> None:
        async with running_court(tmp_path, rec, streamer) as court:
            agent = court.agent
            assert agent.obs is not None and agent.obs.rec is not None and agent.publisher is not None
            master = await async_listening_master(court, tmp_path)

            async def watch_master() -> None:  # what the master hears of OBS_REC, change by change
                while True:
                    for link in master.links.values():
                        hb = link.last_heartbeat
                        if hb is not None and (not seen_by_master or seen_by_master[-1] != hb.obs.rec_state):
                            seen_by_master.append(hb.obs.rec_state)
                    await asyncio.sleep(0.02)

            watcher = asyncio.create_task(watch_master())
            try:
                await _killed_and_back(court)
                await court.until(lambda: seen_by_master[-1:] == ["up"] and "down" in seen_by_master,
                                  "the master to see OBS_REC down and up again")
                # The court's rows reach the master: the crash-ended session, the trigger logs, the links.
                store = CentralStore(central)
                try:
                    def caught_up() -> bool:
                        sessions = store.fetch_sessions("court-7")
                        logs = store.fetch_ivr_events("court-7")
                        return ("obs_crash" in [s.interruption_reason for s in sessions]
                                and [log.trigger for log in logs] == ["match_ready", "replay", "review_over",
                                                                      "match_ready"])
                    await court.until(caught_up, "the sessions and the trigger log at the master")
                    replay = store.fetch_ivr_events("court-7")[1]
                    assert replay.outcome == "partial" and replay.challenge_result == "accepted"
                    assert replay.steps[0]["step"] == "save_clip" and replay.steps[0]["outcome"] == "skipped"
                finally:
                    store.close()
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
                await master.async_shutdown()

    async def _killed_and_back(court: Any) -> None:
        """The crash mid-match, a challenge while OBS_REC is down, OBS back, the next match recorded."""
        agent = court.agent
        court.send(*MATCH_101)
        ready = await court.next_log(TriggerKind.MATCH_READY)
        assert ready.outcome == "done"
        court.send("clk;02:00;start")
        rec.kill()  # a crash: nothing finished, nothing saved
        await court.until(lambda: agent.publisher.heartbeat().obs.rec_state != "up", "OBS_REC seen down", 5)
        for n in range(200):
            court.send(f"clk;01:{59 - n % 60:02d}")
        court.send("ch1")  # a challenge while OBS_REC is down: skipped steps, the scene still switches
        replay = await court.next_log(TriggerKind.REPLAY)
        assert _steps(replay)["save_clip"] == "skipped" and _steps(replay)["ivr_scene"] == "done"
        assert "OBS_REC is" in (replay.reason or "")
        court.send("ch1;1")
        assert (await court.next_log(TriggerKind.REVIEW_OVER)).outcome == "partial"  # no replay buffer to restart
        await court.until(lambda: agent.ingest.stats.stored_events == len(MATCH_101) + 1 + 200 + 2, "every event")
        crashed = "SELECT interruption_reason FROM obs_sessions WHERE session_type = 'recording' AND output_path = ?"
        await court.until(lambda: court.db.execute(crashed, (str(Path(ready.recording_path or "")),)).fetchall()
                          == [("obs_crash",)], "the recording session ended as a crash")
        await asyncio.to_thread(rec.start)
        await agent.obs.rec.async_wait_up(20)
        assert agent.publisher.heartbeat().obs.rec_state == "up"
        court.send(*MATCH_102)
        second = await court.next_log(TriggerKind.MATCH_READY)
        assert second.outcome == "done", second
        assert Path(second.recording_path or "").name == "102_Perica_CRO_vs_Stevica_GER.mkv"
        sessions = court.db.execute(
            "SELECT output_path, end_ms IS NULL, interruption_reason FROM obs_sessions "
            "WHERE session_type = 'recording' ORDER BY session_number DESC LIMIT 2"
        ).fetchall()
        assert sessions == [(second.recording_path, 1, None), (ready.recording_path, 0, "obs_crash")]

    with caplog.at_level(logging.INFO):
        asyncio.run(main())
    lost = [r for r in caplog.records if "OBS rec lost" in r.getMessage()]
    assert len(lost) == 1
    assert "down" in seen_by_master and seen_by_master[-1] == "up"

