"""The remote-control drawer through NiceGUI's simulated user, on a started master linked to two real
court agents (in this process, without OBS) and one court that is not there."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from nicegui import ui

from master.audit import read_commands
from master.config import MasterConfig
from master.control import CourtResult
from shared.commands import Action
from slave_agent.app import SlaveAgent
from slave_agent.config import SlaveConfig
from tests.master.console.conftest import ConsoleUnderTest
from tests.support import async_wait_until, court_config

pytestmark = pytest.mark.asyncio

#: should_see's tries (0.1 s apart) for what waits on the courts' answers: a loaded machine is slow.
COURTS_ANSWER = 100
NO_OBS = "OBS_REC is not configured on this court ([obs.rec] enabled = false)"


@pytest.fixture
def courts(tmp_path: Path) -> list[SlaveConfig]:
    """Courts 1 and 2 run (see ``venue``); court 3 is configured at the master but never started."""
    return [court_config(tmp_path, n, security={"curve": False}) for n in (1, 2, 3)]


@pytest.fixture
def master_config(pg_url: str, tmp_path: Path, courts: list[SlaveConfig]) -> MasterConfig:
    return MasterConfig(
        database_url=pg_url, mdns=False, http_port=0, curve=False, data_dir=tmp_path / "master", heartbeat_seconds=0.3,
        endpoints=[f"{c.node.node_id}@127.0.0.1:{c.publisher.pub_port}:{c.publisher.router_port}" for c in courts],
    )


@pytest_asyncio.fixture
async def venue(console: ConsoleUnderTest, courts: list[SlaveConfig]) -> AsyncIterator[ConsoleUnderTest]:
    """The console's master started with courts 1 and 2 online; all stopped before the console is."""
    master = console.master
    agents = [SlaveAgent(c) for c in courts[:2]]
    try:
        for agent in agents:
            await agent.async_startup()
        await master.async_startup()
        await async_wait_until(lambda: sum(v.status == "online" for v in master.courts()) == 2, 15, "courts 1 and 2 online")
        await console.sign_in()
        yield console
    finally:
        await master.async_shutdown()
        for agent in agents:
            await agent.async_shutdown()


def _texts(user: object, marker: str) -> list[str]:
    return sorted(e.text for e in user.find(marker=marker).elements)  # type: ignore[attr-defined]


async def test_each_courts_result_is_handed_over_as_it_arrives(venue: ConsoleUnderTest) -> None:
    control = venue.master.control
    assert control is not None
    arrived: list[tuple[float, CourtResult]] = []
    began = time.monotonic()
    result = await control.async_send(Action.HEALTH, timeout=3.0, issued_by="director",
                                      on_result=lambda r: arrived.append((time.monotonic() - began, r)))
    ended = time.monotonic() - began
    assert sorted(r.node_id for _, r in arrived) == ["court-1", "court-2", "court-3"]
    assert {r.node_id: r.outcome for r in result.results} == {"court-1": "done", "court-2": "done", "court-3": "expired"}
    live = [at for at, r in arrived if r.outcome == "done"]
    (dead,) = [at for at, r in arrived if r.outcome == "expired"]
    assert ended >= dead >= 2.9 and max(live) < dead - 1.0  # the live courts' results did not wait for the dead one


async def test_the_drawer_asks_before_stopping_and_shows_each_courts_result(venue: ConsoleUnderTest) -> None:
    user = venue.user
    await user.open("/")  # type: ignore[attr-defined]
    user.find(marker="open-drawer").click()  # type: ignore[attr-defined]
    await user.should_see(marker="control-drawer")  # type: ignore[attr-defined]
    user.find(marker="select-court-1").click()  # type: ignore[attr-defined]
    user.find(marker="select-court-2").click()  # type: ignore[attr-defined]

    # Destructive: a confirmation naming the courts; cancelled, nothing is sent.
    user.find(marker="do-stop_recording").click()  # type: ignore[attr-defined]
    await user.should_see("Stop recording on 2 court(s)?")  # type: ignore[attr-defined]
    assert _texts(user, "confirm-courts") == ["Court 1, Court 2"]
    user.find(marker="confirm-cancel").click()  # type: ignore[attr-defined]
    await user.should_not_see(marker="confirm-dialog")  # type: ignore[attr-defined]
    await user.should_not_see(marker="result")  # type: ignore[attr-defined]

    user.find(marker="do-stop_recording").click()  # type: ignore[attr-defined]
    await user.should_see(marker="confirm-action")  # type: ignore[attr-defined]
    user.find(marker="confirm-action").click()  # type: ignore[attr-defined]
    await user.should_see("2 failed", retries=COURTS_ANSWER)  # type: ignore[attr-defined]
    assert _texts(user, "outcome") == ["failed", "failed"]
    assert _texts(user, "detail") == [NO_OBS, NO_OBS]

    # Not destructive: no question, each court's report.
    user.find(marker="do-health").click()  # type: ignore[attr-defined]
    await user.should_see("2 done", retries=COURTS_ANSWER)  # type: ignore[attr-defined]
    assert _texts(user, "outcome") == ["done", "done", "failed", "failed"]
    assert sum(t.startswith("cpu ") for t in _texts(user, "detail")) == 2

    # The agents' recent log lines, each court's under its result.
    user.find(marker="do-logs").click()  # type: ignore[attr-defined]
    await user.should_see(marker="log-lines", retries=COURTS_ANSWER)  # type: ignore[attr-defined]
    assert len(user.find(marker="log-lines").elements) == 2  # type: ignore[attr-defined]

    # One click on a court's card: that court alone.
    user.find(marker="quick-ivr-court-2").click()  # type: ignore[attr-defined]
    await user.should_see("1 failed", retries=COURTS_ANSWER)  # type: ignore[attr-defined]

    # A scene without a name is refused before anything is sent, with the reason.
    user.find(marker="do-scene-named").click()  # type: ignore[attr-defined]
    await user.should_see("not sent")  # type: ignore[attr-defined]
    await user.should_see("set_scene: scene: String should have at least 1 character")  # type: ignore[attr-defined]

    # The audit trail says who did what, where, with what outcome; the cancelled command is not in it.
    assert venue.master.store is not None
    await async_wait_until(lambda: all(r.outcome for r in read_commands(venue.master.store.engine)), 5, "outcomes written")  # type: ignore[union-attr]
    rows = read_commands(venue.master.store.engine)  # type: ignore[union-attr]
    assert [(r.action, r.court_name, r.outcome, r.issued_by) for r in rows] == [
        ("set_scene", "Court 2", "failed", "director"),
        ("logs", "Court 1", "done", "director"), ("logs", "Court 2", "done", "director"),
        ("health", "Court 1", "done", "director"), ("health", "Court 2", "done", "director"),
        ("stop_recording", "Court 1", "failed", "director"), ("stop_recording", "Court 2", "failed", "director"),
    ]
    pages = [read_commands(venue.master.store.engine, limit=2, offset=o, whole_commands=True) for o in (0, 2)]  # type: ignore[union-attr]
    assert [[r.action for r in page] for page in pages] == [["set_scene", "logs", "logs"], ["health", "health", "stop_recording", "stop_recording"]]
    user.find(marker="tab-audit").click()  # type: ignore[attr-defined]
    await user.should_see("by director", retries=COURTS_ANSWER)  # type: ignore[attr-defined]
    await user.should_see("stop recording")  # type: ignore[attr-defined]


async def test_an_announcement_reaches_the_chosen_courts_and_records_its_delivery(venue: ConsoleUnderTest) -> None:
    user = venue.user
    await user.open("/?control")  # type: ignore[attr-defined]
    await user.should_see(marker="control-drawer")  # type: ignore[attr-defined]
    user.find(marker="select-all").click()  # type: ignore[attr-defined]
    await async_wait_until(lambda: all(box.value for box in user.find(marker="select-court-2").elements),  # type: ignore[attr-defined]
                           5, "court 2 ticked by All courts")
    user.find(marker="tab-announce").click()  # type: ignore[attr-defined]
    user.find(marker="announce-text").type("Lunch break until 13:30")  # type: ignore[attr-defined]
    user.find(marker="announce-send").click()  # type: ignore[attr-defined]
    await user.should_see("2 done", retries=COURTS_ANSWER)  # type: ignore[attr-defined]
    assert _texts(user, "outcome") == ["done", "done"]
    assert any("Lunch break until 13:30" in e.text for e in user.find(ui.label).elements)  # type: ignore[attr-defined]
