"""The master's database worker: group commit across courts, and what happens when a waiter goes away."""

from __future__ import annotations

import asyncio
from pathlib import Path

from master.db.migrate import upgrade
from master.db.store import CentralStore
from master.links import DbWorker
from shared.records import EventRecord


def _records(node: str, seqs: range) -> list[EventRecord]:
    return [
        EventRecord(node_id=node, epoch="e1", seq=s, received_ms=s, raw=f"clk;00:{s % 60:02d}",
                    raw_datagram=b"x", code="clk", event_category="CLK")
        for s in seqs
    ]


def test_group_commit_stores_every_court_and_survives_a_cancelled_waiter(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'central.sqlite3'}"
    upgrade(url)
    store = CentralStore(url)
    calls: list[int] = []
    real_insert = store.insert_events

    def counting_insert(records):  # type: ignore[no-untyped-def]
        calls.append(len(records))
        return real_insert(records)

    store.insert_events = counting_insert  # type: ignore[method-assign]

    async def main() -> None:
        db = DbWorker(store)
        try:
            first = asyncio.create_task(db.insert(_records("court-a", range(1, 101))))
            doomed = asyncio.create_task(db.insert(_records("court-b", range(1, 101))))
            others = [asyncio.create_task(db.insert(_records(f"court-{i}", range(1, 51)))) for i in range(3)]
            await asyncio.sleep(0)
            doomed.cancel()  # the court's link stopped while its batch waited
            await asyncio.gather(first, *others)
            await db.insert(_records("court-a", range(101, 111)))  # the committer still works
        finally:
            await db.async_close()

    asyncio.run(main())
    assert store.count_events("court-a") == 110
    assert sum(store.count_events(f"court-{i}") for i in range(3)) == 150
    assert len(calls) <= 3  # 5 courts' batches took at most 3 commits, not 5
    store.close()
