"""``[obs.<name>.process]``: the agent starts a real OBS, restarts it on command and after a crash."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
from pydantic import ValidationError

from restrike.headless_obs import HeadlessObs, available
from restrike.ports import free_port
from shared.commands import NoArgs
from slave_agent.app import SlaveAgent
from slave_agent.commands.dispatcher import CommandFailed
from slave_agent.config import SlaveConfig
from slave_agent.obs import process as process_module
from slave_agent.obs.settings import ObsConfig
from tests.slave_agent.obs.test_court_obs import agent_config
from tests.support import async_wait_until


def _config(tmp_path: Path, port: int, process: dict[str, Any]) -> SlaveConfig:
    cfg = agent_config(tmp_path, None, None)
    rec = cfg.obs.rec.model_validate({"port": port, "keepalive_seconds": 0.5, "process": process})
    return cfg.model_copy(update={"obs": cfg.obs.model_copy(update={"rec": rec})})


@contextmanager
def _obs_home_and_display(tmp_path: Path) -> Iterator[HeadlessObs]:
    """A headless OBS's home and Xvfb display, with OBS itself left for the agent to start."""
    problem = available()
    if problem is not None:
        pytest.fail(f"OBS tests need a real OBS: {problem}; scripts/services installs it")
    obs = HeadlessObs(tmp_path / "obs")
    try:
        obs.prepare()
        yield obs
    finally:
        obs.close()


@pytest.mark.slow
@pytest.mark.expect_error_logs
def test_the_agent_starts_restarts_and_revives_its_obs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(process_module, "BACKOFF_FIRST", 0.2)
    with _obs_home_and_display(tmp_path) as obs:
        async def main() -> None:
            agent = SlaveAgent(_config(tmp_path, obs.port, {
                "executable": "obs", "arguments": obs.arguments(), "working_dir": str(obs.root),
                "environment": obs.environment(),
            }))
            await agent.async_startup()
            try:
                assert agent.obs is not None and agent.obs.rec is not None and agent.command_handlers is not None
                assert agent.publisher is not None and agent.actions is not None
                process = agent.obs.processes["rec"]
                await agent.obs.rec.async_wait_up(40)
                first = process.pid
                assert first is not None and psutil.Process(first).name() == "obs"
                assert agent.publisher.heartbeat().obs.rec_process == f"started by the agent, pid {first}"

                report = await agent.command_handlers.async_restart_obs(NoArgs())  # the director's command
                second = process.pid
                assert second is not None and second != first and not psutil.pid_exists(first)
                assert f"pid {first} -> {second}" in report.detail and "OBS_REC connected again" in report.detail
                assert agent.obs.rec.snapshot.up
                path = await agent.actions.async_recording(True)  # the new OBS records
                assert await agent.actions.async_recording(False) == path and Path(path).stat().st_size > 0

                reasons: list[str | None] = []
                agent.obs.rec.on_state(lambda _b, _a: reasons.append(agent.publisher.heartbeat().obs.rec_reason))
                os.kill(second, signal.SIGKILL)  # a crash
                await async_wait_until(lambda: process.pid not in (None, second) and agent.obs.rec.snapshot.up, 40,
                                       "OBS started again and connected")
                assert any(r and "exited by itself (killed by SIGKILL" in r for r in reasons), reasons
                status = agent.publisher.heartbeat().obs
                assert status.rec_state == "up" and status.rec_process is not None
                assert f"pid {process.pid}; 1 crash, last killed by SIGKILL" in status.rec_process
                third = process.pid
            finally:
                await agent.async_shutdown()
            assert not psutil.pid_exists(third)  # closed with the agent

        asyncio.run(main())
    crash_lines = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(crash_lines) == 1 and "the agent starts it again in 0 s (crash 1)" in crash_lines[0]


@pytest.mark.expect_error_logs
def test_a_wrong_program_is_said_clearly_and_the_court_runs_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        agent = SlaveAgent(_config(tmp_path, free_port(), {"executable": str(tmp_path / "no-such-obs")}))
        await agent.async_startup()
        try:
            assert agent.publisher is not None and agent.command_handlers is not None
            await async_wait_until(lambda: "not found" in (agent.publisher.heartbeat().obs.rec_reason or ""), 10,
                                   "the reason in the heartbeat")
            status = agent.publisher.heartbeat().obs
            assert status.rec_state != "up" and status.rec_reason is not None
            assert "set [obs.rec.process] executable to OBS's full path" in status.rec_reason
            with pytest.raises(CommandFailed, match="no-such-obs' not found"):
                await agent.command_handlers.async_restart_obs(NoArgs())
            assert agent.ingest.address is not None  # ingest runs
        finally:
            await agent.async_shutdown()

    asyncio.run(main())
    assert [r.levelno for r in caplog.records if "no-such-obs" in r.getMessage()] == [logging.ERROR] * 2


def test_only_a_local_obs_and_one_process_per_obs() -> None:
    with pytest.raises(ValidationError, match="only an OBS on this laptop"):
        ObsConfig.model_validate({"rec": {"host": "10.0.0.5", "process": {"executable": "obs"}}})
    with pytest.raises(ValidationError, match="reach the same OBS"):
        ObsConfig.model_validate({"rec": {"process": {"executable": "obs"}},
                                  "str": {"port": 4455, "process": {"executable": "obs"}}})
    ObsConfig.model_validate({"rec": {"process": {"executable": "obs"}}, "str": {"port": 4455}})


@pytest.mark.expect_error_logs
def test_obs_that_exits_while_starting_is_tried_again_with_back_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """As at boot before the desktop is up: OBS cannot open its display and ends; it is started again."""
    monkeypatch.setattr(process_module, "BACKOFF_FIRST", 0.05)
    port = free_port()

    async def main() -> None:
        agent = SlaveAgent(_config(tmp_path, port, {
            "executable": "/bin/sh", "arguments": ["-c", "echo could not open display; exit 1"]}))
        await agent.async_startup()
        try:
            assert agent.obs is not None and agent.publisher is not None
            process = agent.obs.processes["rec"]
            await async_wait_until(lambda: process.crashes >= 3, 10, "three attempts")
            reason = agent.publisher.heartbeat().obs.rec_reason or ""
            assert "exited by itself (exit code 1" in reason and f"never listened on port {port}" in reason
            assert reason.endswith("could not open display")
        finally:
            await agent.async_shutdown()

    asyncio.run(main())
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3 and all("the agent starts it again" in e for e in errors)  # quieter after three
