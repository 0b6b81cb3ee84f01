"""The overlay's score is pushed by the live match state, never polled; a burst is one page update."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from nicegui import ui

from master.console.pages import overlay
from master.console.push import Coalesced
from master.endpoints import Endpoint
from master.services.courts import CourtView
from restrike.ports import free_port
from slave_agent.app import SlaveAgent
from slave_agent.config import SlaveConfig
from tests.master.console.conftest import MATCH, ConsoleUnderTest
from tests.support import async_wait_until, send_pss

pytestmark = pytest.mark.asyncio


def _scores(console: ConsoleUnderTest) -> list[str]:
    """The score labels on the overlay's page, blue then red (none before a card exists)."""
    client = console.user.client  # type: ignore[attr-defined]
    return [e.text for e in client.elements.values() if isinstance(e, ui.label) and "ov-score" in e.classes]


async def test_a_score_reaches_the_overlay_with_its_timer_stopped(
    console: ConsoleUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The page's only timer would first run in an hour: whatever the page shows below was pushed to it.
    monkeypatch.setattr(overlay, "STALE_CHECK_SECONDS", 3600.0)
    agent = SlaveAgent(SlaveConfig(
        data_dir=tmp_path / "court1",
        node={"node_id": "court-1", "court": "Court 1"},
        udp={"host": "127.0.0.1", "port": free_port()},
        publisher={"host": "127.0.0.1", "pub_port": free_port(), "router_port": free_port(), "mdns": False},
        obs={"rec": {"enabled": False}, "str": {"enabled": False}},
        security={"curve": False},  # as the console fixture's master
    ))
    await agent.async_startup()
    await console.master.async_startup()
    try:
        assert agent.publisher is not None
        await console.user.open("/overlay")  # type: ignore[attr-defined]
        assert _scores(console) == []  # no court yet
        # From now on a push recomputes only the court that changed, never every court's card.
        every_court = 0
        all_courts = console.master.courts

        def counted() -> list[CourtView]:
            nonlocal every_court
            every_court += 1
            return all_courts()

        monkeypatch.setattr(console.master, "courts", counted)
        await console.master.async_add_endpoint(
            Endpoint.parse(f"court-1@127.0.0.1:{agent.publisher.pub_port}:{agent.publisher.router_port}")
        )
        send_pss(agent.config.udp.port, *MATCH)
        await async_wait_until(lambda: _scores(console) == ["0", "0"], 15.0, "the card, pushed")
        await console.user.should_see("Kim Minsu")  # type: ignore[attr-defined]
        send_pss(agent.config.udp.port, "sc1;7;sc2;4")
        await async_wait_until(lambda: _scores(console) == ["7", "4"], 15.0, "the new score, pushed")
        assert every_court == 0
    finally:
        await console.master.async_shutdown()
        await agent.async_shutdown()


async def test_a_burst_of_changes_is_one_update_and_a_quiet_change_waits_for_nothing() -> None:
    runs: list[int] = []
    state = {"score": 0}
    push = Coalesced(lambda: runs.append(state["score"]), interval=3600.0)
    for score in range(1, 81):  # a second of 8 courts at 10 events a second, in one go
        state["score"] = score
        push.poke()
    await asyncio.sleep(0)
    assert runs == [80]  # one update, with the latest state
    state["score"] = 81
    push.poke()
    push.poke()
    await asyncio.sleep(0.05)
    assert runs == [80]  # within the interval: held back (an hour here)
    push.close()

    quiet = Coalesced(lambda: runs.append(-1), interval=3600.0)
    quiet.poke()
    await asyncio.sleep(0)
    assert runs == [80, -1]  # the first change of a quiet spell runs at the next turn of the loop

    gone = Coalesced(lambda: runs.append(-2), interval=0.0)
    gone.poke()
    gone.close()  # the page went before its update ran
    gone.poke()
    await asyncio.sleep(0.05)
    assert runs == [80, -1]
