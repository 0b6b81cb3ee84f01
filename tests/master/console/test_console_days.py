"""The tournament-days page through NiceGUI's simulated user, on a started master (CURVE on) linked to a
real court agent process: plan a tournament and a day, activate it (the court tags its events with the
day), finish it; a known day's report and chapters file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from nicegui import ui

from master.config import MasterConfig
from master.console.pages import days
from master.console.pages.days import chapters_path
from master.db.repository import EventFilter
from master.db.store import CentralStore
from tests.master import day_seed
from tests.master.console.conftest import ConsoleUnderTest
from tests.pipeline import Court, install_keys, keys_for
from tests.support import async_wait_until, send_pss

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

#: should_see's tries (0.1 s apart) after a database write: a loaded machine takes seconds.
SLOW = 150


@pytest.fixture
def court(tmp_path: Path) -> Iterator[Court]:
    """``restrike slave run`` as a court laptop runs it, with the test master's key."""
    court = Court(tmp_path / "court7", "Court 7").start()
    try:
        yield court
    finally:
        assert court.proc is not None
        court.proc.close()


@pytest.fixture
def master_config(pg_url: str, tmp_path: Path, court: Court) -> MasterConfig:
    install_keys(tmp_path / "master" / "keys", "master", keys_for("master"))
    return MasterConfig(database_url=pg_url, mdns=False, http_port=0, curve=True, data_dir=tmp_path / "master",
                        heartbeat_seconds=0.3, endpoints=[court.endpoint])


@pytest_asyncio.fixture
async def venue(console: ConsoleUnderTest, court: Court) -> AsyncIterator[ConsoleUnderTest]:
    """The known day of :mod:`tests.master.day_seed` stored, the court approved and online, signed in."""
    with CentralStore(console.master.url) as store:
        day_seed.seed(store)
        store.approve_court(court.node_id, keys_for(court.node_id).public, by="tests", replace=True)
    master = console.master
    try:
        await master.async_startup()
        await async_wait_until(lambda: any(v.status == "online" for v in master.courts()), 20, "Court 7 online")
        await console.sign_in()
        yield console
    finally:
        await master.async_shutdown()


async def test_plan_activate_and_finish_a_day_on_a_real_court(
    venue: ConsoleUnderTest, court: Court, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(days, "REPORT_SECONDS", 0.3)
    user = venue.user
    await user.open("/days")  # type: ignore[attr-defined]
    await user.should_see("Croatia Open", retries=SLOW)  # type: ignore[attr-defined]

    user.find(marker="tournament-name").type("Zagreb Open")  # type: ignore[attr-defined]
    _set(user, "tournament-start", "2026-12-03")
    user.find(marker="create-tournament").click()  # type: ignore[attr-defined]
    await user.should_see(marker="add-day-zagreb-open", retries=SLOW)  # type: ignore[attr-defined]
    assert _value(user, "day-date-zagreb-open") == "2026-12-03"  # day 1 on the tournament's first date
    user.find(marker="add-day-zagreb-open").click()  # type: ignore[attr-defined]
    await user.should_see(marker="activate-zagreb-open-1", retries=SLOW)  # type: ignore[attr-defined]
    [zagreb] = [t for t in venue.repository.tournaments() if t.name == "Zagreb Open"]
    [day] = venue.repository.days(zagreb.uuid)

    user.find(marker="activate-zagreb-open-1").click()  # type: ignore[attr-defined]
    await user.should_see("1 done", retries=SLOW)  # type: ignore[attr-defined]
    await async_wait_until(lambda: _active_texts(user, "zagreb-open-1") == ["Active on Court 7"], 15,
                           "the court's heartbeat naming the day")
    user.find(marker="report-zagreb-open-1").click()  # type: ignore[attr-defined]
    await user.should_see("No court has stored anything under this day yet.", retries=SLOW)  # type: ignore[attr-defined]
    send_pss(court.udp_port, "clk;02:00;start")  # the court tags what it stores now with the day the master made
    await async_wait_until(lambda: venue.repository.count_events(EventFilter(day_uuid=day.uuid)) == 1, 15,
                           "the court's event under the new day at the master")
    await user.should_see("1 event · 0 replays · no review timed yet", retries=SLOW)  # type: ignore[attr-defined]
    send_pss(court.udp_port, "clk;01:59")  # the report, drawn, now changes in place
    await async_wait_until(lambda: _texts(user, "report-summary") == ["2 events · 0 replays · no review timed yet"], 15,
                           "the live report counting the court's second event")

    user.find(marker="finish-zagreb-open-1").click()  # type: ignore[attr-defined]
    await user.should_see("Finish Zagreb Open day 1?", retries=SLOW)  # type: ignore[attr-defined]
    user.find(marker="confirm-finish").click()  # type: ignore[attr-defined]
    def finished() -> bool:
        # A card per command: activate and finish, each done.
        return (sorted(_texts(user, "result-title")) == ["Activate Zagreb Open day 1", "Finish Zagreb Open day 1"]
                and _texts(user, "result-summary") == ["1 done", "1 done"]
                and _active_texts(user, "zagreb-open-1") == ["not active on any court"])

    try:
        await async_wait_until(finished, 20, "the day finished on the court")
    except AssertionError as exc:
        state = _texts(user, "result-title"), _texts(user, "result-summary"), _active_texts(user, "zagreb-open-1")
        raise AssertionError(f"{exc}: {state}") from None


async def test_a_days_report_and_its_chapters_file(venue: ConsoleUnderTest) -> None:
    user = venue.user
    await user.open(f"/days?day={day_seed.DAY}")  # type: ignore[attr-defined]
    await user.should_see("Croatia Open · day 1", retries=SLOW)  # type: ignore[attr-defined]
    await user.should_see("32 events · 3 replays · review median 37.5 s, longest 45 s")  # type: ignore[attr-defined]
    [table] = user.find(marker="replay-table").elements  # type: ignore[attr-defined]
    rows = {row["court"]: row for row in table.rows}
    for name, counts in day_seed.COUNTS.items():
        assert {c: rows[name][c] for c in counts} == counts
    assert rows["Court 1"]["review"] == "37.5 / 45 s" and rows["Court 1"]["chapters"] == "3 chapters ⤓"
    assert rows["Court 2"]["chapters"] == "none" and rows["Court 2"]["asked"] == "referee 1"
    [chart] = user.find(marker="category-chart").elements  # type: ignore[attr-defined]
    series = {s["name"].split()[0]: s["data"] for s in chart.options["series"]}
    assert series["O"] == [9, 3] and series["TH"] == [0, 0]
    assert [name for name, shown in chart.options["legend"]["selected"].items() if not shown] == ["R referee", "O other"]

    client = user.http_client  # type: ignore[attr-defined]
    download = await client.get(rows["Court 1"]["chapters_url"])
    assert download.status_code == 200 and download.text == day_seed.CHAPTERS
    assert "attachment" in download.headers["content-disposition"]
    missing = await client.get(chapters_path(day_seed.DAY, "court-2"))
    assert missing.status_code == 404 and "at least 3" in missing.text

    await user.open("/days?day=no-such-day")  # type: ignore[attr-defined]
    await user.should_see("The master knows no day no-such-day.", retries=SLOW)  # type: ignore[attr-defined]


def _set(user: object, marker: str, value: str) -> None:
    for element in user.find(marker=marker).elements:  # type: ignore[attr-defined]
        element.value = value


def _value(user: object, marker: str) -> str:
    [element] = user.find(marker=marker).elements  # type: ignore[attr-defined]
    return str(element.value)


def _texts(user: object, marker: str) -> list[str]:
    return [e.text for e in user.find(marker=marker).elements]  # type: ignore[attr-defined]


def _active_texts(user: object, day: str) -> list[str]:
    """The "active on" line of one day."""
    [block] = user.find(marker=f"day-{day}").elements  # type: ignore[attr-defined]
    return [e.text for e in block.descendants() if isinstance(e, ui.label) and "active" in e.text.lower()]
