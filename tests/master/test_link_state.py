"""The per-court catch-up state machine, driven message by message (no slave, no database server).

The end-to-end scenarios prove the whole path; these pin down each rule of ``SlaveLink``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import zmq.asyncio

from master.endpoints import Endpoint
from master.links import SlaveLink
from shared.records import EventRecord
from shared.wire import (
    TOPIC_EVENT,
    TOPIC_HEARTBEAT,
    CatchupPage,
    CatchupRequest,
    EventMessage,
    Heartbeat,
    decode,
    encode,
)


class FakeDb:
    """Stands in for DbWorker: remembers what would be stored, in the order it was handed over."""

    def __init__(self, known: dict[str, int] | None = None):
        self.stored: list[tuple[str, int]] = []
        self.known = known or {}
        self.store = self

    def last_stored(self, node_id: str) -> dict[str, int]:
        return dict(self.known)

    async def call(self, fn: Callable[..., object], *args: object) -> object:
        return fn(*args)

    async def insert(self, records: list[EventRecord]) -> None:
        self.stored += [(r.epoch, r.seq) for r in records]


def rec(seq: int, epoch: str = "e1", node: str = "court-1") -> EventRecord:
    return EventRecord(node_id=node, epoch=epoch, seq=seq, received_ms=seq, raw="rnd;1", raw_datagram=b"rnd;1",
                       code="rnd", event_category="RND")


def hb(last_seq: int, epoch: str = "e1") -> list[bytes]:
    beat = Heartbeat(node_id="court-1", court="Court 1", hostname="h", version="0", epoch=epoch,
                     last_seq=last_seq, sent_ms=0, pub_port=1, router_port=2)
    return [TOPIC_HEARTBEAT, encode(beat)]


def live(record: EventRecord) -> list[bytes]:
    return [TOPIC_EVENT, encode(EventMessage(record=record))]


def run(body: Callable[[SlaveLink, FakeDb, list[CatchupRequest]], Awaitable[None]], known: dict[str, int] | None = None) -> FakeDb:
    async def main() -> FakeDb:
        ctx = zmq.asyncio.Context()
        db = FakeDb(known)
        link = SlaveLink(Endpoint("127.0.0.1", 1, 2), ctx, db)  # type: ignore[arg-type]
        requests: list[CatchupRequest] = []

        async def capture(payload: bytes) -> None:
            message = decode(payload)
            if isinstance(message, CatchupRequest):
                requests.append(message)

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


async def page(link: SlaveLink, request: CatchupRequest, records: list[EventRecord], last_seq: int, epoch: str = "e1") -> None:
    reply = CatchupPage(request_id=request.request_id, epoch=epoch, last_seq=last_seq, records=records, done=True)
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
