"""What the crew sees when OBS is set up wrong: one clear log line and the state in the heartbeat, no crash, no storm."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
from pathlib import Path

import pytest

from restrike.headless_obs import HeadlessObs
from slave_agent.obs.triggers import TriggerKind, TriggerLog
from tests.obs_peers import MATCH_101, running_court, running_obs

pytestmark = [pytest.mark.slow, pytest.mark.expect_error_logs]


def _errors(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and text in r.getMessage()]


def test_a_missing_scene_is_said_once_and_the_replay_still_runs(
    tmp_path: Path, obs_pair: tuple[HeadlessObs, HeadlessObs], caplog: pytest.LogCaptureFixture
) -> None:
    rec, streamer = obs_pair

    async def main() -> TriggerLog:
        async with running_court(tmp_path, rec, streamer, str_overrides={"ivr_scene": "REPLAY CAM"}) as court:
            assert court.agent.publisher is not None and court.agent.director is not None
            await court.until(lambda: "REPLAY CAM" in (court.agent.publisher.heartbeat().obs.str_reason or ""),
                              "the missing scene in the heartbeat")
            assert court.agent.publisher.heartbeat().obs.str_state == "up"
            court.send(*MATCH_101)
            ready = await court.next_log(TriggerKind.MATCH_READY)
            assert ready.outcome == "done", ready.steps
            await asyncio.sleep(2.5)  # a clip needs seconds of video
            return await court.agent.director.async_replay()

    with caplog.at_level(logging.INFO):
        replay = asyncio.run(main())
    assert len(_errors(caplog, "'REPLAY CAM' missing")) == 1
    steps = {s.name: (s.outcome.value, s.detail) for s in replay.steps}
    assert steps["ivr_scene"][0] == "failed" and "code 600" in (steps["ivr_scene"][1] or "")
    assert steps["open_player"][0] == steps["link_events"][0] == steps["announce"][0] == "done", steps
    assert replay.outcome == "partial" and replay.trigger.source == "operator"


def test_a_wrong_password_shows_in_the_heartbeat_and_is_not_retried(
    tmp_path: Path, obs_pair: tuple[HeadlessObs, HeadlessObs], caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OBS_REC_PW", "not-the-password")
    with running_obs(tmp_path, password="court-7") as locked:

        async def main() -> None:
            async with running_court(tmp_path, locked, obs_pair[1], wait_up=False,
                                     rec_overrides={"password_source": "env:OBS_REC_PW"}) as court:
                assert court.agent.publisher is not None
                await court.until(lambda: "authentication failed" in (
                    court.agent.publisher.heartbeat().obs.rec_reason or ""), "the refused password in the heartbeat")
                assert court.agent.publisher.heartbeat().obs.rec_state == "down"
                court.send(*MATCH_101)
                ready = await court.next_log(TriggerKind.MATCH_READY)
                assert ready.outcome == "partial" and "authentication failed" in (ready.reason or "")

        with caplog.at_level(logging.INFO):
            asyncio.run(main())
    assert len(_errors(caplog, "wrong password")) == 1
    assert "not-the-password" not in caplog.text


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs (a full disk) needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=384k", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_stops_the_recording_with_one_clear_line(
    tmp_path: Path, tiny_disk: Path, obs_pair: tuple[HeadlessObs, HeadlessObs], caplog: pytest.LogCaptureFixture
) -> None:
    rec, streamer = obs_pair

    async def main() -> None:
        async with running_court(tmp_path, rec, streamer, videos=tiny_disk,
                                 ivr_overrides={"step_timeout_seconds": 2}) as court:
            assert court.agent.publisher is not None
            court.send(*MATCH_101)
            ready = await court.next_log(TriggerKind.MATCH_READY)
            steps = {s.name: (s.outcome.value, s.detail or "") for s in ready.steps}
            assert steps["start_recording"][0] == "failed" and "MB free on the disk of" in steps["start_recording"][1]
            assert steps["folder"][0] == "done" and steps["start_replay_buffer"][0] == "failed"
            status = court.agent.publisher.heartbeat().obs
            assert status.rec_state == "up" and "OBS will not record" in (status.rec_reason or "")
            assert not status.recording

    with caplog.at_level(logging.INFO):
        asyncio.run(main())
    assert len(_errors(caplog, "MB free")) == 1  # the two refused outputs say it once
