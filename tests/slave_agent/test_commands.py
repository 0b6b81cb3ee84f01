"""The court's command dispatcher on a real SQLite database: at most once per id, deadlines, refusals.

No sockets here (the end-to-end path is tests/master/test_control.py): commands go straight to
``async_handle``, as the ROUTER would hand them over.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.commands import Action, ActivateDayArgs, BadArguments, LogLines, LogsArgs, NoArgs, parse_args, parse_data
from shared.wire import Command, CommandResult, WireError, decode, encode
from slave_agent.commands.book import CommandBook
from slave_agent.commands.dispatcher import CommandDispatcher, CommandFailed
from slave_agent.commands.handlers import RecentLogs
from slave_agent.db.store import EventStore


def command(action: str = "health", *, node: str = "court-1", seconds: float = 5.0, command_id: str | None = None,
            **args: Any) -> Command:
    now = time.time_ns() // 1_000_000
    return Command(command_id=command_id or uuid.uuid4().hex, node_id=node, action=action, args=args,
                   sent_ms=now, deadline_ms=now + int(seconds * 1000))


def dispatcher(store: EventStore) -> tuple[CommandDispatcher, list[str]]:
    ran: list[str] = []
    d = CommandDispatcher("court-1", CommandBook(store.path), reply=lambda identity, payload: None)

    async def health(_: NoArgs) -> None:
        ran.append("health")

    async def fails(_: NoArgs) -> None:
        ran.append("fails")
        raise CommandFailed("OBS_REC is down: connection refused")

    async def slow(_: NoArgs) -> None:
        ran.append("slow")
        await asyncio.sleep(30)

    async def broken(_: NoArgs) -> None:
        ran.append("broken")
        raise RuntimeError("a bug")

    d.register(Action.HEALTH, health)
    d.register(Action.STOP_RECORDING, fails)
    d.register(Action.REPLAY, slow)
    d.register(Action.FINISH_DAY, broken)
    d.mark_unavailable(Action.RESTART_OBS, "OBS is not set up on this court")
    return d, ran


@pytest.fixture
def court(tmp_path: Path) -> Iterator[EventStore]:
    store = EventStore(tmp_path, node_id="court-1")
    try:
        yield store
    finally:
        store.close()


def test_an_id_runs_once_and_a_repeat_gets_the_recorded_outcome(court: EventStore) -> None:
    async def main() -> None:
        d, ran = dispatcher(court)
        first = command()
        one = await d.async_handle(first)
        again = await d.async_handle(first)
        assert (one.outcome, one.replayed, again.outcome, again.replayed) == ("done", False, "done", True)
        assert ran == ["health"] and d.stats.replayed == 1
        failed = command("stop_recording")
        assert (await d.async_handle(failed)).reason == "OBS_REC is down: connection refused"
        repeat = await d.async_handle(failed)
        assert (repeat.outcome, repeat.reason, repeat.replayed) == ("failed", "OBS_REC is down: connection refused", True)
        assert ran == ["health", "fails"]
        await d.book.async_close()

    asyncio.run(main())


def test_the_record_survives_a_restart_and_an_interrupted_command_never_runs_again(tmp_path: Path) -> None:
    async def first_life() -> str:
        store = EventStore(tmp_path, node_id="court-1")
        d, ran = dispatcher(store)
        slow = command("replay", seconds=60)
        task = asyncio.create_task(d.async_handle(slow))
        while ran != ["slow"]:
            await asyncio.sleep(0.01)
        await d.async_stop()  # the agent stops while it runs
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        done = command()
        await d.async_handle(done)
        await d.book.async_close()
        store.close()
        return slow.command_id + " " + done.command_id

    async def second_life(ids: str) -> None:
        slow_id, done_id = ids.split()
        store = EventStore(tmp_path)
        d, ran = dispatcher(store)
        interrupted = await d.async_handle(command("replay", seconds=60, command_id=slow_id))
        finished = await d.async_handle(command(command_id=done_id))
        await d.book.async_close()
        store.close()
        assert ran == []  # neither ran again
        assert (interrupted.outcome, interrupted.replayed) == ("failed", True)
        assert interrupted.reason is not None and "not run again" in interrupted.reason
        assert (finished.outcome, finished.replayed) == ("done", True)

    asyncio.run(second_life(asyncio.run(first_life())))


@pytest.mark.expect_error_logs
def test_deadlines_refusals_and_bugs_each_get_an_answer(court: EventStore, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        d, ran = dispatcher(court)
        late = command(seconds=0.001)
        await asyncio.sleep(0.01)
        late_result = await d.async_handle(late)
        assert (late_result.outcome, late_result.reason) == ("expired", "arrived after its deadline")
        slow = await d.async_handle(command("replay", seconds=0.3))
        assert slow.outcome == "expired" and slow.duration_ms < 1000
        other = await d.async_handle(command(node="court-2"))
        assert other.outcome == "failed" and "not court-2" in (other.reason or "")
        unknown = await d.async_handle(command("fly"))
        assert unknown.outcome == "failed" and "unknown action 'fly'" in (unknown.reason or "")
        bad = await d.async_handle(command("logs", lines="many"))
        assert bad.outcome == "failed" and (bad.reason or "").startswith("logs: lines:")
        missing = await d.async_handle(command("restart_obs"))
        assert missing.reason == "OBS is not set up on this court"
        bug = await d.async_handle(command("finish_day"))
        assert bug.outcome == "failed" and bug.reason == "internal error: RuntimeError: a bug"
        assert ran == ["slow", "broken"]  # the late one, the refused ones and the bad arguments never ran
        assert d.stats.rejected == 3 and d.stats.expired == 2
        # a refused command (another court's, an unknown action) takes no id: the right court can still run it
        assert await d.book.async_get(other.command_id) is None
        await d.book.async_close()

    asyncio.run(main())
    assert "Command finish_day failed unexpectedly" in caplog.text and "RuntimeError: a bug" in caplog.text


def test_two_copies_of_a_running_command_run_it_once(court: EventStore) -> None:
    async def main() -> None:
        d, ran = dispatcher(court)
        slow = command("replay", seconds=0.5)
        first, second = await asyncio.gather(d.async_handle(slow), d.async_handle(slow))
        assert ran == ["slow"]
        assert {first.replayed, second.replayed} == {False, True} and first.outcome == second.outcome == "expired"
        await d.book.async_close()

    asyncio.run(main())


def test_wire_shapes_and_argument_models() -> None:
    c = command("set_scene", scene="IVR_SCENE")
    assert decode(encode(c)) == c
    result = CommandResult(command_id=c.command_id, node_id="court-1", action="logs", outcome="done", duration_ms=1.5,
                           data=LogLines(lines=["a"]).model_dump(mode="json"))
    assert parse_data(decode(encode(result)).data or {}) == LogLines(lines=["a"])  # type: ignore[union-attr]
    now = time.time_ns() // 1_000_000
    with pytest.raises(WireError, match="deadline"):
        decode(encode(Command.model_construct(command_id=c.command_id, node_id="x", action="health", args={},
                                              sent_ms=now, deadline_ms=now - 1, v=c.v, type="command")))
    with pytest.raises(WireError):
        decode(encode(Command.model_construct(command_id="not-hex", node_id="x", action="health", args={},
                                              sent_ms=now, deadline_ms=now + 1, v=c.v, type="command")))
    assert parse_args(Action.LOGS, {}) == LogsArgs()
    with pytest.raises(BadArguments, match="set_scene: scene"):
        parse_args(Action.SET_SCENE, {})
    day = parse_args(Action.ACTIVATE_DAY, {"tournament_name": "Croatia Open", "day_number": 2, "date": "2026-12-03"})
    assert isinstance(day, ActivateDayArgs)
    other_court = ActivateDayArgs(tournament_name="Croatia Open", day_number=2, date=day.date)
    assert day.tournament == other_court.tournament  # every court derives the same tournament UUID from the name


def test_recent_logs_keep_the_last_lines_at_a_level() -> None:
    import logging

    logs = RecentLogs(capacity=3)
    log = logging.getLogger("test.recent")
    log.addHandler(logs)
    log.setLevel(logging.DEBUG)
    try:
        for i in range(5):
            log.info("line %d", i)
        log.warning("careful")
    finally:
        log.removeHandler(logs)
    assert [line.split(": ", 1)[1] for line in logs.lines(10)] == ["line 3", "line 4", "careful"]
    assert [line.split(": ", 1)[1] for line in logs.lines(10, "WARNING")] == ["careful"]
    assert len(logs.lines(1)) == 1
