"""Every later change of a court's rows reaches the master: stream times corrected (and
corrected again) while the master is stopped and while it runs, a replay clip linked,
sessions started and ended, matches named and finished. Afterwards the two databases are
equal field for field (events, matches, OBS sessions), on PostgreSQL and on SQLite.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from shared.pss.simulator import simulate_match
from shared.records import ms_to_iso
from slave_agent.db.ivr import link_clip, save_log, set_challenge_result
from slave_agent.db.store import EventStore
from slave_agent.obs.triggers import ClipSpan, Step, StepOutcome, Trigger, TriggerKind, TriggerLog
from tests.pipeline import FIELD, Court, Master, Traffic, assert_master_has_everything
from tests.support import restrike_exe, wait_until

pytestmark = pytest.mark.slow


def slave_cli(court: Court, *args: str) -> str:
    """``restrike slave ...`` against the court's database, from its own process while the agent runs."""
    done = subprocess.run([restrike_exe(), "slave", *args, "--data-dir", str(court.data_dir)],
                          capture_output=True, text=True, check=True)
    return done.stdout + done.stderr


def play(court: Court, seed: int) -> int:
    """One simulated match, line after line, as the scoring software would send it (faster)."""
    lines = [line for _, line in simulate_match(seed, round_seconds=6, break_seconds=3).lines]
    traffic = Traffic(court.udp_port, rate=250, lines=lines, once=True)
    traffic.start()
    traffic.join(60)
    assert traffic.sent == len(lines)
    return len(lines)


def stream_times(court: Court) -> set[str | None]:
    return {row[FIELD["str_timestamp"]] for row in court.rows()}


def test_corrections_made_while_the_master_is_away_and_while_it_runs_converge(central_url: str, tmp_path: Path) -> None:
    court = Court(tmp_path / "court", "Court 1").start()
    started = time.time_ns() // 1_000_000 - 120_000
    slave_cli(court, "tournament", "create", "Croatia Open", "--days", "1")
    slave_cli(court, "session", "start", "stream", "--at", ms_to_iso(started))
    slave_cli(court, "session", "start", "recording", "--at", ms_to_iso(started + 30_000))
    assert court.proc is not None
    wait_until(lambda: "Tournament context is now Croatia Open" in court.proc.text(), 10, "the agent to follow the day")
    master = Master(central_url, tmp_path / "master", [court.endpoint]).start()
    try:
        play(court, seed=3)
        assert_master_has_everything(central_url, [court])
        before = stream_times(court)

        # The master is away: the operator corrects the stream time, then corrects it again,
        # OBS links a replay clip, the stream restarts, and a second match is fought.
        master.proc.stop()
        slave_cli(court, "session", "correct", "stream", "1", "--seconds", "-4")
        slave_cli(court, "session", "correct", "stream", "1", "--seconds", "-7.5")
        clip = EventStore(court.data_dir)  # the OBS triggers' writes, from another process here
        try:
            now = time.time_ns() // 1_000_000
            clip_path = str(tmp_path / "IVR recordings" / "m1_ch1.mkv")
            assert link_clip(clip.conn, ClipSpan(now - 600_000, now), clip_path) > 0
            replay = Trigger(TriggerKind.REPLAY, "pss", now - 900, clip.current_match_uuid, "1", "red")
            save_log(clip.conn, TriggerLog("f" * 32, replay, now, [Step("save_clip", StepOutcome.DONE, 420, 410)],
                                           clip_path=clip_path, clip_bytes=1234, clip_span=ClipSpan(now - 20_000, now)),
                     clip.day.day_id if clip.day else None)
        finally:
            clip.close()
        slave_cli(court, "session", "start", "stream", "--reason", "obs_crash")
        play(court, seed=4)
        assert stream_times(court) != before
        master.proc.start("Master storing into")
        assert_master_has_everything(central_url, [court])

        # And while it runs: corrected once more, the stream ended.
        slave_cli(court, "session", "correct", "stream", "2", "--seconds", "3")
        slave_cli(court, "session", "end", "stream")
        decided = EventStore(court.data_dir)  # the review's result, filled in on the replay's row later
        try:
            set_challenge_result(decided.conn, replay.match_uuid, "accepted")
        finally:
            decided.close()
        assert_master_has_everything(central_url, [court])
        state = court.state()
        assert len(state.matches) >= 2 and len(state.sessions) == 3  # stream 1 and 2, recording 1
        assert any(row[FIELD["ivr_link"]] for row in state.events)  # reached the master too (compared above)
        assert [(i[5], i[6], i[13]) for i in state.ivr_events if i[2] == "f" * 32] == [("1", "replay", "accepted")]
    finally:
        master.proc.close()
        assert court.proc is not None
        court.proc.close()
