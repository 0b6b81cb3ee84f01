"""The IVR desk through NiceGUI's simulated user, and ``/clips/<replay>``: HTTP Range over a remuxed clip."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from nicegui import ui

from master.clips import ClipFetcher
from master.db.store import CentralStore
from master.services.ivr import IvrDeskService, ReviewState
from tests.master.console.conftest import ConsoleUnderTest
from tests.master.console.test_console_events import _table, _until
from tests.master.test_central_store import records
from tests.master.test_ivr_desk_service import T0, replay

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def desk(console: ConsoleUnderTest, tmp_path: Path) -> AsyncIterator[ConsoleUnderTest]:
    """Court 1 with two replays: r-1's clip is in the master's cache (fetched earlier), r-2's is on the
    court, which is not linked (offline); a clip fetcher of its own, as the running master has."""
    with CentralStore(console.master.url) as store:
        store.upsert_node("court-1", court_name="Court 1", status="offline")
        store.apply_changes("court-1", "e1", [replay("r-1", 1, T0, match=None), replay("r-2", 2, T0 + 1000, match=None)],
                            through_rev=2)
    fetcher = ClipFetcher(tmp_path / "clips", lambda node_id: None)
    files = fetcher.cache.files("court-1", "/videos/IVR recordings/r-1.mkv")
    subprocess.run(  # a clip as OBS saves one: H.264 + AAC in Matroska, keyframe every second
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x180:rate=30", "-f", "lavfi", "-i", "sine",
         "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "aac", "-f", "matroska",
         str(files.complete)], check=True, timeout=60,
    )
    console.master.clips = fetcher
    try:
        await console.sign_in()
        yield console
    finally:
        await fetcher.async_close()


async def test_the_clip_route_serves_ranges_of_the_remuxed_mp4_and_says_why_it_cannot(desk: ConsoleUnderTest) -> None:
    client = desk.user.http_client  # type: ignore[attr-defined]
    whole = await client.get("/clips/r-1")
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes" and whole.content[4:8] == b"ftyp"
    size = len(whole.content)
    part = await client.get("/clips/r-1", headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.content == whole.content[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{size}"
    tail = await client.get("/clips/r-1", headers={"Range": "bytes=-500"})
    assert tail.status_code == 206 and tail.content == whole.content[-500:]
    assert (await client.get("/clips/r-1", headers={"Range": f"bytes={size}-"})).status_code == 416
    # Remuxed, not re-encoded: the same H.264 stream.
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", "-"],
                           input=whole.content, capture_output=True, check=True, timeout=30).stdout.split()
    assert probe == [b"h264", b"aac"]

    offline = await client.get("/clips/r-2")
    assert offline.status_code == 503 and offline.text.startswith("Court 1 is offline")
    assert (await client.get("/clips/no-such")).status_code == 404


async def test_bulk_review_and_an_offline_courts_clip_said_plainly(desk: ConsoleUnderTest) -> None:
    user = desk.user
    await user.open("/ivr")  # type: ignore[attr-defined]
    table: ui.table = user.find(marker="replays").elements.pop()  # type: ignore[attr-defined]
    assert [(r["uuid"], r["court"], r["side"], r["state"]) for r in table.rows] == [
        ("r-2", "Court 1", "RED", "pending"), ("r-1", "Court 1", "RED", "pending")]
    table.selected = list(table.rows)
    user.find(marker="bulk-resolved").click()  # type: ignore[attr-defined]
    await _until(lambda: [r["state"] for r in table.rows] == ["resolved", "resolved"], "both resolved")
    assert {r["reviewer"] for r in table.rows} == {"director"}
    replays = IvrDeskService(desk.repository)
    stored = replays.replay("r-2")
    assert stored is not None and stored.review.state is ReviewState.RESOLVED and stored.review.reviewer == "director"

    await user.open("/ivr?state=pending")  # type: ignore[attr-defined]
    await user.should_see("0 replay(s), 0 pending")  # type: ignore[attr-defined]
    await user.open("/ivr?state=resolved&court=Court%201")  # type: ignore[attr-defined]
    await user.should_see("2 replay(s), 0 pending")  # type: ignore[attr-defined]
    await user.open("/ivr?court=Court%209")  # type: ignore[attr-defined]
    await user.should_see("Cannot show these replays: no court 'Court 9'")  # type: ignore[attr-defined]

    await user.open("/ivr?replay=r-2")  # type: ignore[attr-defined]
    await user.should_see("Court 1 is offline: the clip stays on the court laptop")  # type: ignore[attr-defined]


async def test_an_event_inside_a_clip_links_to_its_player(desk: ConsoleUnderTest) -> None:
    linked, plain = records("court-1", "e1", range(1, 3))
    with CentralStore(desk.master.url) as store:
        store.insert_events([linked.model_copy(update={"ivr_link": "/videos/IVR recordings/r-1.mkv"}), plain])
    await desk.user.open("/events")  # type: ignore[attr-defined]
    assert {r["seq"]: r["clip"] for r in _table(desk).rows} == {1: "/ivr?replay=r-1", 2: ""}


async def test_new_replays_appear_but_not_while_rows_are_selected(
    desk: ConsoleUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("master.console.pages.ivr.REFRESH_SECONDS", 0.1)
    await desk.user.open("/ivr")  # type: ignore[attr-defined]
    table: ui.table = desk.user.find(marker="replays").elements.pop()  # type: ignore[attr-defined]
    table.selected = [table.rows[1]]
    with CentralStore(desk.master.url) as store:
        store.apply_changes("court-1", "e1", [replay("r-3", 3, T0 + 2000, match=None)], through_rev=3)
    await asyncio.sleep(0.5)  # five refresh periods: the rows stay where the director clicked
    assert [r["uuid"] for r in table.rows] == ["r-2", "r-1"]
    table.selected = []
    await _until(lambda: [r["uuid"] for r in table.rows] == ["r-3", "r-2", "r-1"], "the new replay on top")
