"""The master's database worker: group commit across courts (events and row changes in one
commit), and what happens when a waiter goes away."""

from __future__ import annotations

import asyncio
from pathlib import Path

from master.db.migrate import upgrade
from master.db.store import CentralStore, ChangeSet
from master.links import DbWorker
from shared.changes import MatchRecord
from shared.records import EventRecord


def _records(node: str, seqs: range) -> list[EventRecord]:
    return [
        EventRecord(node_id=node, epoch="e1", seq=s, received_ms=s, raw=f"clk;00:{s % 60:02d}",
                    raw_datagram=b"x", code="clk", event_category="R")
        for s in seqs
    ]


def test_group_commit_stores_every_court_and_survives_a_cancelled_waiter(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'central.sqlite3'}"
    upgrade(url)
    store = CentralStore(url)
    calls: list[tuple[int, int]] = []
    real_write = store.write

    def counting_write(records, change_sets):  # type: ignore[no-untyped-def]
        calls.append((len(records), len(change_sets)))
        return real_write(records, change_sets)

    store.write = counting_write  # type: ignore[method-assign]
    match = MatchRecord(rev=1, uuid="m-1", status="loaded", loaded_ms=0)

    async def main() -> None:
        db = DbWorker(store)
        try:
            first = asyncio.create_task(db.write(_records("court-a", range(1, 101))))
            doomed = asyncio.create_task(db.write(_records("court-b", range(1, 101))))
            others = [asyncio.create_task(db.write(_records(f"court-{i}", range(1, 51)))) for i in range(3)]
            changes = asyncio.create_task(db.write([], ChangeSet("court-c", "e1", [match], 1)))
            await asyncio.sleep(0)
            doomed.cancel()  # the court's link stopped while its batch waited
            await asyncio.gather(first, *others, changes)
            await db.write(_records("court-a", range(101, 111)))  # the committer still works
        finally:
            await db.async_close()

    asyncio.run(main())
    assert store.count_events("court-a") == 110
    assert sum(store.count_events(f"court-{i}") for i in range(3)) == 150
    assert store.fetch_matches("court-c") == [match] and store.change_cursor("court-c") == {"e1": 1}
    assert sum(n for n, _ in calls) == 260 and sum(c for _, c in calls) == 1
    assert len(calls) <= 3  # 6 courts' work took at most 3 commits, not 6
    store.close()
