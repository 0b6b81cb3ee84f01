"""How fast the central store takes events (``restrike bench pipeline``)."""

from __future__ import annotations

import logging
import time
import uuid

from sqlalchemy import delete

from master.db.migrate import upgrade
from master.db.models import CentralPssEvent
from master.db.store import CentralStore
from shared.pss.parser import parse_line
from shared.records import EventRecord

__all__ = ["bench_insert"]

logger = logging.getLogger(__name__)

_LINES = ("pt1;3", "pt2;1", "hl1;50", "clk;1:23;start", "wg1;1;wg2;0", "sc1;4;sc2;2")


def bench_insert(url: str, n: int = 20_000, batch: int = 500) -> float:
    """Rows per second :meth:`CentralStore.insert_events` sustains in batches of ``batch``.

    Migrates the database, writes ``n`` realistic events under a throw-away node id and
    deletes them again, so it can run against a venue's real database.
    """
    upgrade(url)
    node_id = f"bench-{uuid.uuid4().hex[:12]}"
    records = [_record(node_id, seq) for seq in range(1, n + 1)]
    with CentralStore(url) as store:
        try:
            started = time.perf_counter()
            for start in range(0, n, batch):
                store.insert_events(records[start : start + batch])
            elapsed = time.perf_counter() - started
        finally:
            with store.engine.begin() as connection:
                connection.execute(delete(CentralPssEvent).where(CentralPssEvent.node_id == node_id))
    rate = n / elapsed
    logger.info("central store: %d rows in batches of %d at %.0f rows/s", n, batch, rate)
    return rate


def _record(node_id: str, seq: int) -> EventRecord:
    line = _LINES[seq % len(_LINES)]
    event = parse_line(line)
    return EventRecord(
        node_id=node_id,
        epoch="bench",
        seq=seq,
        received_ms=1_754_000_000_000 + seq * 40,
        raw=line,
        raw_datagram=line.encode(),
        code=event.code,
        event_category=event.category.value,
        parsed=event.fields,
        valid=event.valid,
        error=event.error,
        processing_us=120,
        tournament_uuid="00000000-0000-4000-8000-000000000001",
        tournament_day_uuid="00000000-0000-4000-8000-000000000002",
        match_uuid="00000000-0000-4000-8000-000000000003",
        match_number=str(100 + seq // 200),
    )
