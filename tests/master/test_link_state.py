"""The per-court catch-up state machine, driven message by message (no slave, no database server).

The end-to-end scenarios prove the whole path; these pin down each rule of ``SlaveLink``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest
import zmq.asyncio

from master.db.store import ChangeSet
from master.endpoints import Endpoint
from master.links import SlaveLink
from shared.changes import EventChange, MatchRecord, RowChange
from shared.records import EventRecord
from shared.wire import (
    TOPIC_CHANGES,
    TOPIC_EVENT,
    TOPIC_HEARTBEAT,
    CatchupPage,
    CatchupRequest,
    ChangesMessage,
    ChangesPage,
    ChangesRequest,
    EventMessage,
    Heartbeat,
    decode,
    encode,
)


class FakeDb:
    """Stands in for DbWorker: remembers what would be stored, in the order it was handed over.

    ``log`` has both kinds in that order: ``("event", seq)`` and ``("change", rev)``.
    """

    def __init__(self, known: dict[str, int] | None = None, known_revs: dict[str, int] | None = None):
        self.stored: list[tuple[str, int]] = []
        self.log: list[tuple[str, int]] = []
        self.cursors: dict[str, int] = {}
        self.known = known or {}
        self.known_revs = known_revs or {}
        self.change_requests: list[ChangesRequest] = []  # the DEALER's other requests
        self.up = asyncio.Event()  # cleared: the database is down, inserts wait
        self.up.set()
        self.store = self

    def last_stored(self, node_id: str) -> dict[str, int]:
        return dict(self.known)

    def change_cursor(self, node_id: str) -> dict[str, int]:
        return dict(self.known_revs)

    async def call(self, fn: Callable[..., object], *args: object) -> object:
        return fn(*args)

    async def write(self, records: list[EventRecord], changes: ChangeSet | None = None) -> None:
        await self.up.wait()
        self.stored += [(r.epoch, r.seq) for r in records]
        self.log += [("event", r.seq) for r in records]
        if changes is not None:
            self.log += [("change", c.rev) for c in changes.changes]
            self.cursors[changes.epoch] = changes.through_rev


def rec(seq: int, epoch: str = "e1", node: str = "court-1") -> EventRecord:
    return EventRecord(node_id=node, epoch=epoch, seq=seq, received_ms=seq, raw="rnd;1", raw_datagram=b"rnd;1",
                       code="rnd", event_category="R")


def hb(last_seq: int, epoch: str = "e1", last_rev: int = 0) -> list[bytes]:
    beat = Heartbeat(node_id="court-1", court="Court 1", hostname="h", version="0", epoch=epoch,
                     last_seq=last_seq, last_rev=last_rev, sent_ms=0, pub_port=1, router_port=2)
    return [TOPIC_HEARTBEAT, encode(beat)]


def ev_change(rev: int, seq: int, epoch: str = "e1") -> EventChange:
    return EventChange(rev=rev, node_id="court-1", epoch=epoch, seq=seq, str_timestamp="00:00:01")


def match_change(rev: int) -> MatchRecord:
    return MatchRecord(rev=rev, uuid="m1", status="fighting", loaded_ms=0)


def live_changes(after_rev: int, *changes: RowChange, epoch: str = "e1") -> list[bytes]:
    return [TOPIC_CHANGES, encode(ChangesMessage(node_id="court-1", epoch=epoch, after_rev=after_rev,
                                                 changes=list(changes)))]


def live(record: EventRecord) -> list[bytes]:
    return [TOPIC_EVENT, encode(EventMessage(record=record))]


def run(body: Callable[[SlaveLink, FakeDb, list[CatchupRequest]], Awaitable[None]], known: dict[str, int] | None = None,
        known_revs: dict[str, int] | None = None, **link_options: int) -> FakeDb:
    async def main() -> FakeDb:
        ctx = zmq.asyncio.Context()
        db = FakeDb(known, known_revs)
        link = SlaveLink(Endpoint("127.0.0.1", 1, 2), ctx, db, **link_options)  # type: ignore[arg-type]
        requests: list[CatchupRequest] = []

        async def capture(payload: bytes) -> None:
            message = decode(payload)
            if isinstance(message, CatchupRequest):
                requests.append(message)
            elif isinstance(message, ChangesRequest):
                db.change_requests.append(message)

        link._async_send = capture  # type: ignore[method-assign]  # the DEALER is the transport under test elsewhere
        store = asyncio.create_task(link._async_store_pipeline())
        try:
            await body(link, db, requests)
            for _ in range(50):  # let the pipeline hand everything to the fake database
                await asyncio.sleep(0)
        finally:
            store.cancel()
            await asyncio.gather(store, return_exceptions=True)
            for task in list(link._tasks):
                task.cancel()
            await asyncio.gather(*link._tasks, return_exceptions=True)
            link.sub.close(0)
            link.dealer.close(0)
            ctx.destroy(0)
        return db

    return asyncio.run(main())


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def page(link: SlaveLink, request: CatchupRequest, records: list[EventRecord], last_seq: int, epoch: str = "e1",
               done: bool = True) -> None:
    reply = CatchupPage(request_id=request.request_id, epoch=epoch, last_seq=last_seq, records=records, done=done)
    await link._async_on_reply([encode(reply)])


def test_first_heartbeat_asks_after_what_is_stored_and_live_events_wait_for_the_page() -> None:
    async def body(link: SlaveLink, db: FakeDb, requests: list[CatchupRequest]) -> None:
        await link._async_on_pub(hb(12))
        await settle()
        assert [(r.epoch, r.after_seq) for r in requests] == [("e1", 10)]  # the DB holds up to 10
        await link._async_on_pub(live(rec(13)))  # arrives during the catch-up: held
        await page(link, requests[0], [rec(11), rec(12)], 12)
        await link._async_on_pub(live(rec(13)))  # the same event again: a duplicate
        await link._async_on_pub(live(rec(14)))

    db = run(body, known={"e1": 10})
    assert db.stored == [("e1", 11), ("e1", 12), ("e1", 13), ("e1", 14)]


def test_a_gap_in_live_events_starts_a_catch_up_from_the_last_accepted() -> None:
    async def body(link: SlaveLink, db: FakeDb, requests: list[CatchupRequest]) -> None:
        await link._async_on_pub(hb(0))
        await settle()
        await page(link, requests[0], [], 0)
        await link._async_on_pub(live(rec(1)))
        await link._async_on_pub(live(rec(4)))  # 2 and 3 were lost on PUB
        assert [(r.epoch, r.after_seq) for r in requests[1:]] == [("e1", 1)]
        await link._async_on_pub(live(rec(5)))  # held while catching up
        await page(link, requests[1], [rec(2), rec(3), rec(4)], 4)
        assert link.stats.gaps == 1

    assert run(body).stored == [("e1", s) for s in range(1, 6)]


def test_a_heartbeat_ahead_of_what_arrived_fetches_the_rest() -> None:
    async def body(link: SlaveLink, db: FakeDb, requests: list[CatchupRequest]) -> None:
        await link._async_on_pub(hb(0))
        await settle()
        await page(link, requests[0], [], 0)
        await link._async_on_pub(hb(3))  # three events were published and none arrived
        assert [(r.epoch, r.after_seq) for r in requests[1:]] == [("e1", 0)]
        await page(link, requests[1], [rec(1), rec(2), rec(3)], 3)

    assert run(body).stored == [("e1", 1), ("e1", 2), ("e1", 3)]


def test_held_events_of_a_replaced_database_are_dropped_not_looped_on() -> None:
    async def body(link: SlaveLink, db: FakeDb, requests: list[CatchupRequest]) -> None:
        await link._async_on_pub(hb(2))
        await settle()
        await link._async_on_pub(live(rec(3)))  # from the old database, held during the catch-up
        await page(link, requests[0], [rec(1, "e2")], 1, epoch="e2")  # the court has a new database
        assert link.cursor.epoch == "e2" and not link._catching_up
        assert len(requests) == 1  # no endless re-requests for the stale event

    assert run(body).stored == [("e2", 1)]


def test_a_page_with_another_nodes_events_is_refused() -> None:
    async def body(link: SlaveLink, db: FakeDb, requests: list[CatchupRequest]) -> None:
        await link._async_on_pub(hb(1))
        await settle()
        await page(link, requests[0], [rec(1, node="court-2")], 1)
        assert link.stats.bad_messages == 1 and link._catching_up  # the request timeout asks again

    assert run(body).stored == []


def test_a_heartbeat_from_another_node_on_this_link_is_ignored() -> None:
    async def body(link: SlaveLink, db: FakeDb, requests: list[CatchupRequest]) -> None:
        await link._async_on_pub(hb(0))
        await settle()
        other = Heartbeat(node_id="court-9", court="Court 9", hostname="h", version="0", epoch="x",
                          last_seq=5, sent_ms=0, pub_port=1, router_port=2)
        await link._async_on_pub([TOPIC_HEARTBEAT, encode(other)])
        assert link.node_id == "court-1" and link.stats.bad_messages == 1

    run(body)


def test_a_swapped_laptop_at_a_configured_address_is_followed_once_the_old_one_is_offline() -> None:
    async def body(link: SlaveLink, db: FakeDb, requests: list[CatchupRequest]) -> None:
        await link._async_on_pub(hb(0))
        await settle()
        await page(link, requests[0], [], 0)
        link.online = False  # three heartbeats missed: the old laptop is gone
        other = Heartbeat(node_id="court-9", court="Court 1", hostname="spare", version="0", epoch="e9",
                          last_seq=2, sent_ms=0, pub_port=1, router_port=2)
        await link._async_on_pub([TOPIC_HEARTBEAT, encode(other)])
        await settle()
        assert link.node_id == "court-9" and link.online
        assert [(r.epoch, r.after_seq) for r in requests[1:]] == [("e9", 0)]
        reply = CatchupPage(request_id=requests[1].request_id, epoch="e9", last_seq=2,
                            records=[rec(1, "e9", "court-9"), rec(2, "e9", "court-9")], done=True)
        await link._async_on_reply([encode(reply)])

    assert run(body).stored == [("e9", 1), ("e9", 2)]


# --- a slow database ------------------------------------------------------------------------


def test_past_the_limit_live_events_are_left_in_the_court_and_fetched_once_the_database_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body(link: SlaveLink, db: FakeDb, requests: list[CatchupRequest]) -> None:
        await started(link, requests)
        db.up.clear()  # the central database stops answering
        for seq in range(1, 11):
            await link._async_on_pub(live(rec(seq)))
            await settle()
        assert link.cursor.accepted == 4 and link.held == 4  # held: the limit
        assert link.stats.shed == 6 and link._catching_up and len(requests) == 1  # no page asked: no room
        await link._async_on_pub(hb(10))  # heartbeats change nothing meanwhile
        assert len(requests) == 1
        db.up.set()
        await settle()
        assert [(r.epoch, r.after_seq, r.limit) for r in requests[1:]] == [("e1", 4, 2)]
        await page(link, requests[1], [rec(5), rec(6)], 10, done=False)
        await link._async_on_pub(live(rec(11)))  # while catching up, with room again: held
        assert [r.after_seq for r in requests[2:]] == [6]
        await page(link, requests[2], [rec(7), rec(8), rec(9), rec(10)], 10)
        # Replaying the held 11 finds the pipeline full again: it too is fetched when there is room.
        await settle()
        assert [r.after_seq for r in requests[3:]] == [10]
        await page(link, requests[3], [rec(11)], 11)

    with caplog.at_level(logging.INFO, logger="master.links"):
        db = run(body, held_events=4, page_size=2)
    assert db.stored == [("e1", s) for s in range(1, 12)]
    said = [r.getMessage() for r in caplog.records]
    assert sum("left in the court's database" in m for m in said) == 2  # said once per episode
    assert any("the 6 live events not held in memory were fetched" in m for m in said)


def test_row_changes_without_room_are_fetched_once_a_page_fits() -> None:
    async def body(link: SlaveLink, db: FakeDb, requests: list[CatchupRequest]) -> None:
        await started(link, requests)
        db.up.clear()
        for seq in range(1, 5):
            await link._async_on_pub(live(rec(seq)))
        await settle()
        await link._async_on_pub(live_changes(0, match_change(1), match_change(2)))  # the limit is reached
        assert link.cursor.rev == 0 and link._fetching_changes and db.change_requests == []
        db.up.set()
        await settle()
        assert [(r.epoch, r.after_rev) for r in db.change_requests] == [("e1", 0)]
        await changes_page(link, db.change_requests[0], [match_change(1), match_change(2)], 2)

    db = run(body, held_events=4, page_size=2)
    assert db.log == [("event", 1), ("event", 2), ("event", 3), ("event", 4), ("change", 1), ("change", 2)]


# --- row changes ----------------------------------------------------------------------------


def assert_in_order(log: list[tuple[str, int]], events: list[int], changes: list[int], change_of: dict[int, int]) -> None:
    """Events in seq order, changes in revision order, and each event change stored no earlier than its event
    (a round stores its events first, then its changes)."""
    assert [n for kind, n in log if kind == "event"] == events
    assert [n for kind, n in log if kind == "change"] == changes
    for rev, seq in change_of.items():
        assert log.index(("change", rev)) > log.index(("event", seq)), (rev, seq, log)


async def changes_page(link: SlaveLink, request: ChangesRequest, changes: list[RowChange], last_rev: int,
                       done: bool = True) -> None:
    reply = ChangesPage(request_id=request.request_id, epoch="e1", last_rev=last_rev, changes=changes, done=done)
    await link._async_on_reply([encode(reply)])


async def started(link: SlaveLink, requests: list[CatchupRequest], last_seq: int = 0, last_rev: int = 0) -> None:
    """First contact with nothing missing: the link follows epoch e1."""
    await link._async_on_pub(hb(last_seq, last_rev=last_rev))
    await settle()
    await page(link, requests[0], [], last_seq)


def test_live_changes_that_continue_the_last_revision_are_stored_after_their_events() -> None:
    async def body(link: SlaveLink, db: FakeDb, requests: list[CatchupRequest]) -> None:
        await started(link, requests)
        await link._async_on_pub(live(rec(1)))
        await link._async_on_pub(live_changes(0, ev_change(1, 1), match_change(2)))
        await link._async_on_pub(live(rec(2)))
        await link._async_on_pub(live_changes(2, ev_change(3, 2)))
        await link._async_on_pub(hb(2, last_rev=3))  # nothing missing: no request
        assert db.change_requests == [] and link.cursor.rev == 3

    db = run(body)
    assert_in_order(db.log, events=[1, 2], changes=[1, 2, 3], change_of={1: 1, 3: 2})
    assert db.cursors == {"e1": 3}


def test_skipped_revisions_are_fetched_after_the_last_accepted() -> None:
    async def body(link: SlaveLink, db: FakeDb, requests: list[CatchupRequest]) -> None:
        await started(link, requests, last_seq=0)
        await link._async_on_pub(live_changes(0, match_change(1)))
        await link._async_on_pub(live_changes(4, match_change(5)))  # 2..4 were lost on PUB
        assert [(r.epoch, r.after_rev) for r in db.change_requests] == [("e1", 1)]
        await link._async_on_pub(live_changes(5, match_change(6)))  # ignored while fetching
        await changes_page(link, db.change_requests[0], [match_change(3), match_change(5)], 5)
        await link._async_on_pub(hb(0, last_rev=6))  # the heartbeat says 6 exists: fetched
        await changes_page(link, db.change_requests[1], [match_change(6)], 6)
        assert [(r.epoch, r.after_rev) for r in db.change_requests] == [("e1", 1), ("e1", 5)]

    assert run(body).log == [("change", 1), ("change", 3), ("change", 5), ("change", 6)]


def test_a_change_of_an_event_not_here_yet_waits_for_the_event() -> None:
    async def body(link: SlaveLink, db: FakeDb, requests: list[CatchupRequest]) -> None:
        await started(link, requests, last_seq=0)
        await link._async_on_pub(live(rec(1)))
        # Event 2 was lost on PUB; its change arrives: stop before it, fetch the events first.
        await link._async_on_pub(live_changes(0, ev_change(1, 1), ev_change(2, 2), match_change(3)))
        assert link.cursor.rev == 1 and link._catching_up
        assert [(r.epoch, r.after_seq) for r in requests[1:]] == [("e1", 1)]
        await page(link, requests[1], [rec(2)], 2)
        # Events are in: the heartbeat (ahead in revisions) brings the rest of the changes.
        await link._async_on_pub(hb(2, last_rev=3))
        assert [(r.epoch, r.after_rev) for r in db.change_requests] == [("e1", 1)]
        await changes_page(link, db.change_requests[0], [ev_change(2, 2), match_change(3)], 3)

    db = run(body)
    assert_in_order(db.log, events=[1, 2], changes=[1, 2, 3], change_of={1: 1, 2: 2})


def test_a_restarted_master_fetches_changes_after_its_cursor_once_events_are_in() -> None:
    async def body(link: SlaveLink, db: FakeDb, requests: list[CatchupRequest]) -> None:
        await link._async_on_pub(hb(12, last_rev=40))
        await settle()
        assert db.change_requests == []  # events first
        await link._async_on_pub(live_changes(40, match_change(41)))  # during the event catch-up: left for later
        await page(link, requests[0], [rec(11), rec(12)], 12)
        assert [(r.epoch, r.after_rev) for r in db.change_requests] == [("e1", 30)]  # the stored cursor
        await changes_page(link, db.change_requests[0], [ev_change(35, 11), match_change(38)], 40, done=False)
        await changes_page(link, db.change_requests[1], [match_change(40), match_change(41)], 41)
        assert [r.after_rev for r in db.change_requests] == [30, 38]

    db = run(body, known={"e1": 10}, known_revs={"e1": 30})
    assert_in_order(db.log, events=[11, 12], changes=[35, 38, 40, 41], change_of={35: 11})


def test_changes_of_another_database_wait_for_the_event_catch_up() -> None:
    async def body(link: SlaveLink, db: FakeDb, requests: list[CatchupRequest]) -> None:
        await started(link, requests)
        await link._async_on_pub(live_changes(0, match_change(1), epoch="e2"))
        assert link.cursor.rev == 0 and db.change_requests == []

    assert run(body).log == []
