"""The events page through NiceGUI's simulated user: filters, cursor paging, CSV export of the whole result."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable

import pytest
from nicegui import ui

from master.console.pages.events import PAGE_SIZE
from master.db.store import CentralStore
from tests.master.console.conftest import ConsoleUnderTest
from tests.master.test_central_store import records

pytestmark = pytest.mark.asyncio


def _store(url: str, count: int) -> None:
    with CentralStore(url) as store:
        store.upsert_node("court-1", court_name="Court 1", status="online")
        store.insert_events(records("court-1", "e1", range(1, count + 1)))


async def _until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """The click handlers run as tasks: wait for their effect (no fixed sleep)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def _table(console: ConsoleUnderTest) -> ui.table:
    return console.user.find(ui.table).elements.pop()  # type: ignore[attr-defined, no-any-return]


async def test_pages_filters_and_export(console: ConsoleUnderTest) -> None:
    url = console.master.url
    _store(url, PAGE_SIZE + 40)
    await console.sign_in()
    user = console.user
    await user.open("/events")  # type: ignore[attr-defined]
    rows = _table(console).rows
    assert len(rows) == PAGE_SIZE and rows[0]["seq"] == PAGE_SIZE + 40 and rows[0]["court"] == "Court 1"  # newest first
    [court_field] = user.find(marker="court-filter").elements  # type: ignore[attr-defined]
    assert court_field.props["_autocomplete"] == ["Court 1"]  # the courts the master knows, to pick from

    user.find("Older").click()  # type: ignore[attr-defined]
    await _until(lambda: [r["seq"] for r in _table(console).rows] == list(range(40, 0, -1)), "the second page")
    await user.should_see("page 2")  # type: ignore[attr-defined]
    user.find("Newer").click()  # type: ignore[attr-defined]
    await _until(lambda: _table(console).rows[0]["seq"] == PAGE_SIZE + 40, "the first page again")

    user.find("Text in line").type("pt1")  # type: ignore[attr-defined]
    user.find(marker="apply").click()  # type: ignore[attr-defined]
    await _until(lambda: all(r["raw"].startswith("pt1") for r in _table(console).rows), "only pt1 lines")
    assert _table(console).rows

    response = await user.http_client.get("/events.csv", params={"categories": "R", "court": "Court 1"})  # type: ignore[attr-defined]
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    exported = list(csv.DictReader(io.StringIO(response.text)))
    expected = [r for r in records("court-1", "e1", range(1, PAGE_SIZE + 41)) if r.event_category == "R"]
    assert len(exported) == len(expected) > 0 and {row["event_category"] for row in exported} == {"R"}

    unknown = await user.http_client.get("/events.csv", params={"court": "Court 9"})  # type: ignore[attr-defined]
    assert unknown.status_code == 400 and "Court 9" in unknown.text


async def test_an_unknown_court_is_said_on_the_page(console: ConsoleUnderTest) -> None:
    _store(console.master.url, 3)
    await console.sign_in()
    await console.user.open("/events?court=Court%209")  # type: ignore[attr-defined]
    await console.user.should_see("Cannot show these events")  # type: ignore[attr-defined]


async def test_new_events_appear_on_the_first_page(console: ConsoleUnderTest) -> None:
    _store(console.master.url, 5)
    await console.sign_in()
    await console.user.open("/events")  # type: ignore[attr-defined]
    assert _table(console).rows[0]["seq"] == 5
    fresh = records("court-1", "e1", range(6, 9))
    with CentralStore(console.master.url) as store:
        store.insert_events(fresh)
    console.master.matches.on_records("court-1", fresh)  # what the court's link does when they arrive
    await _until(lambda: _table(console).rows[0]["seq"] == 8, "the new events at the top")
