"""The court's SQLite event store: the source of truth every other part reads after commit.

One writer (the ingest batch writer) owns the connection; readers (CLI, catch-up) open
their own. Each event gets ``(node_id, epoch, seq)``: ``epoch`` names this database file's
life, ``seq`` rises strictly, so the master can ask for "everything after" exactly.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.match_state import MatchState, MatchStatus
from shared.pss import Category, PssEvent, parse_datagram
from shared.records import EventRecord
from shared.stream_time import format_hms, stream_seconds
from slave_agent.db.schema import migrate

__all__ = [
    "DB_FILENAME",
    "EVENT_COLUMNS",
    "INSERT_EVENT",
    "RECORD_SELECT",
    "Datagram",
    "DayContext",
    "EventFilter",
    "EventStore",
    "StoreBusy",
    "connect",
    "read_page",
    "row_to_record",
    "transaction",
]

logger = logging.getLogger(__name__)

DB_FILENAME = "restrike-slave.sqlite3"

EVENT_COLUMNS = (
    "node_id, epoch, seq, received_ms, source_addr, raw, raw_datagram, event_code, "
    "event_category, parsed_data, is_valid, error_message, processing_us, tournament_id, "
    "tournament_day_id, match_id, match_number"
)
INSERT_EVENT = (
    f"INSERT INTO pss_events_v2 ({EVENT_COLUMNS}) "
    f"VALUES ({', '.join('?' * len(EVENT_COLUMNS.split(', ')))})"
)
RECORD_SELECT = """
    SELECT e.node_id, e.epoch, e.seq, e.received_ms, e.raw, e.raw_datagram, e.event_code,
           e.event_category, e.parsed_data, e.is_valid, e.error_message, e.processing_us,
           t.uuid, d.uuid, m.uuid, e.match_number, e.rec_timestamp, e.str_timestamp, e.ivr_link
    FROM pss_events_v2 e
    LEFT JOIN tournaments t ON t.id = e.tournament_id
    LEFT JOIN tournament_days d ON d.id = e.tournament_day_id
    LEFT JOIN matches m ON m.id = e.match_id
"""


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
#: The messages that open (``pre``) or name (``mch``) a match.
_MATCH_LINKING = frozenset({"pre", "mch"})

#: Events whose first arrival is dated on the match row.
_MATCH_MILESTONES = {"rdy": "ready_ms", "win": "finished_ms", "wmh": "finished_ms"}


class StoreBusy(Exception):
    """The database refused a write for now (locked, disk full); the batch must be retried."""


@dataclass(frozen=True, slots=True)
class Datagram:
    """A UDP datagram as the listener saw it, stamped at receipt."""

    received_ms: int
    data: bytes
    source: str | None = None


@dataclass(frozen=True, slots=True)
class DayContext:
    """The active tournament day every stored event is tagged with."""

    tournament_id: int
    tournament_uuid: str
    tournament_name: str
    day_id: int
    day_uuid: str
    day_number: int
    date: str


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Selection for the event table's queries; all parts optional and combined with AND."""

    session_id: int | None = None
    tournament: str | None = None
    day: str | None = None
    match_number: str | None = None
    categories: tuple[str, ...] = ()
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int | None = None


@dataclass(slots=True)
class _MatchLink:
    id: int
    uuid: str
    number: str | None


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` on an autocommit connection; rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def connect(path: Path, *, synchronous: str = "FULL") -> sqlite3.Connection:
    """A connection with the pragmas and SQL functions the schema relies on."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
    conn.create_function("restrike_session_hms", 3, _session_hms, deterministic=True)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=1000")
    return conn


def _session_hms(event_ms: int, start_ms: int, cumulative: float) -> str | None:
    """The SQL side of :func:`shared.stream_time.stream_seconds`: one rule for both."""
    seconds = stream_seconds(event_ms, start_ms, cumulative)
    return format_hms(seconds) if seconds >= 0 else None


class EventStore:
    """Parses datagrams and stores them as numbered events, a batch per transaction."""

    def __init__(self, data_dir: Path, *, node_id: str | None = None, synchronous: str = "FULL"):
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DB_FILENAME
        self.conn = connect(self.path, synchronous=synchronous)
        migrate(self.conn)
        self.node_id, self.epoch = self._identity(node_id)
        row = self.conn.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM pss_events_v2 WHERE epoch = ?", (self.epoch,)
        ).fetchone()
        self.last_seq: int = row[0]
        self.day: DayContext | None = self._load_active_day()
        self._match = self._load_current_match()
        #: The current match folded from committed events (restarts empty: the next load fills it).
        self.match_state = MatchState()

    # --- identity ---------------------------------------------------------------

    def _identity(self, configured: str | None) -> tuple[str, str]:
        """``(node_id, epoch)`` of this file; a new node id starts a new epoch (a new life of the rows).

        The master asks for "everything after (epoch, seq)" per node: rows stored under the old
        id must never be served under the new one.
        """
        meta = dict(self.conn.execute("SELECT key, value FROM node_meta WHERE key IN ('node_id', 'epoch')"))
        node_id = configured or meta.get("node_id") or f"court-{uuid.uuid4().hex[:8]}"
        epoch = meta.get("epoch")
        if epoch is None or node_id != meta.get("node_id"):
            if "node_id" in meta and node_id != meta["node_id"]:
                logger.warning(
                    "Node id changed from %s to %s (configuration): a new epoch starts; the master keeps "
                    "what it has under the old id", meta["node_id"], node_id,
                )
            epoch = uuid.uuid4().hex
            with transaction(self.conn):
                self.conn.executemany(
                    "INSERT INTO node_meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [("node_id", node_id), ("epoch", epoch)],
                )
        return node_id, epoch

    # --- ingest -------------------------------------------------------------------

    def write_batch(self, datagrams: Sequence[Datagram]) -> list[EventRecord]:
        """Parse and store datagrams in one transaction; the records exist only if it commits.

        Raises :class:`StoreBusy` (after rolling back) when the database is locked or full,
        so the caller keeps the batch and tries again.
        """
        seq, match = self.last_seq, self._match
        state = self.match_state.clone()
        rows: list[tuple[Any, ...]] = []
        records: list[EventRecord] = []
        named_matches: list[_MatchLink] = []
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            for dgram in datagrams:
                started = time.perf_counter_ns()
                events = parse_datagram(dgram.data)
                parse_us = (time.perf_counter_ns() - started) // 1000
                for event in events:
                    seq += 1
                    if event.code in _MATCH_LINKING:
                        linked = self._link_match(event, match, dgram.received_ms)
                        if linked is not None and linked is not match and linked.number is not None:
                            named_matches.append(linked)
                        if match is not None and linked is not None and linked.id != match.id:
                            self._save_match(match, state)  # the previous match's final state
                        match = linked
                    state.fold(event)
                    if event.code in _MATCH_MILESTONES and event.valid and match is not None:
                        self._mark_milestone(match, event.code, dgram.received_ms)
                    row, record = self._row(event, dgram, seq, match, parse_us)
                    rows.append(row)
                    records.append(record)
            self.conn.executemany(INSERT_EVENT, rows)
            if match is not None and rows:
                self._save_match(match, state)
            named = {m.uuid: m for m in named_matches}
            for m in named.values():
                self.conn.execute(
                    "UPDATE pss_events_v2 SET match_number = ? WHERE match_id = ? AND match_number IS NULL",
                    (m.number, m.id),
                )
            if named:
                records = [
                    r.model_copy(update={"match_number": named[r.match_uuid].number})
                    if r.match_number is None and r.match_uuid in named
                    else r
                    for r in records
                ]
            if self.day is not None and records:
                records = self._with_session_times(records)
            self.conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:  # locked, busy, disk full, disk I/O: worth retrying
            self._rollback()
            raise StoreBusy(str(exc)) from exc
        except BaseException:  # anything else: leave no transaction open, let the caller decide
            self._rollback()
            raise
        self.last_seq, self._match, self.match_state = seq, match, state
        return records

    def _save_match(self, match: _MatchLink, state: MatchState) -> None:
        """Project the folded state onto the ``matches`` row (one UPDATE per batch).

        After an agent restart the state starts empty mid-match: it may add to the row, never erase it.
        """
        if state.status is MatchStatus.IDLE:
            return
        blue_rounds, red_rounds = state.rounds_won
        self.conn.execute(
            """UPDATE matches SET match_number = COALESCE(?, match_number), phase = COALESCE(?, phase),
                   weight_class = COALESCE(?, weight_class), division = COALESCE(?, division),
                   blue_name = COALESCE(?, blue_name), blue_noc = COALESCE(?, blue_noc),
                   red_name = COALESCE(?, red_name), red_noc = COALESCE(?, red_noc), status = ?,
                   winner = COALESCE(?, winner), decision = COALESCE(?, decision),
                   blue_rounds = ?, red_rounds = ?
               WHERE id = ?""",
            (
                state.info.number, state.info.phase, state.info.weight_class, state.info.division,
                state.blue.name or None, state.blue.noc or None, state.red.name or None,
                state.red.noc or None, state.status.value, state.result.winner, state.result.decision,
                state.result.blue_rounds if state.result.blue_rounds is not None else blue_rounds,
                state.result.red_rounds if state.result.red_rounds is not None else red_rounds,
                match.id,
            ),
        )

    def _mark_milestone(self, match: _MatchLink, code: str, at_ms: int) -> None:
        column = _MATCH_MILESTONES[code]
        self.conn.execute(f"UPDATE matches SET {column} = COALESCE({column}, ?) WHERE id = ?", (at_ms, match.id))

    def write_unstorable(self, dgram: Datagram, error: str) -> list[EventRecord]:
        """Store a datagram that broke the normal path as a flagged row: verbatim, unparsed, no match."""
        event = PssEvent(dgram.data.decode("utf-8", "backslashreplace"), "", Category.OTHER, {}, False, error)
        seq = self.last_seq + 1
        row, record = self._row(event, dgram, seq, None, 0)
        with transaction(self.conn):
            self.conn.execute(INSERT_EVENT, row)
        self.last_seq = seq
        return [record]

    def _with_session_times(self, records: list[EventRecord]) -> list[EventRecord]:
        """The times the insert trigger filled in, so published records match the rows."""
        times = {
            seq: (str_ts, rec_ts)
            for seq, str_ts, rec_ts in self.conn.execute(
                """SELECT seq, str_timestamp, rec_timestamp FROM pss_events_v2
                   WHERE epoch = ? AND seq BETWEEN ? AND ?
                     AND (str_timestamp IS NOT NULL OR rec_timestamp IS NOT NULL)""",
                (self.epoch, records[0].seq, records[-1].seq),
            )
        }
        if not times:
            return records
        return [
            r.model_copy(update={"str_timestamp": times[r.seq][0], "rec_timestamp": times[r.seq][1]})
            if r.seq in times
            else r
            for r in records
        ]

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def _row(
        self, event: PssEvent, dgram: Datagram, seq: int, match: _MatchLink | None, parse_us: int
    ) -> tuple[tuple[Any, ...], EventRecord]:
        day = self.day
        category = event.category.value
        if match is None:
            match_id = match_uuid = number = None
        else:
            match_id, match_uuid, number = match.id, match.uuid, match.number
        row = (
            self.node_id, self.epoch, seq, dgram.received_ms, dgram.source, event.raw, dgram.data,
            event.code, category, _JSON.encode(event.fields), int(event.valid), event.error, parse_us,
            day.tournament_id if day else None, day.day_id if day else None, match_id, number,
        )
        record = EventRecord.trusted(
            node_id=self.node_id,
            epoch=self.epoch,
            seq=seq,
            received_ms=dgram.received_ms,
            raw=event.raw,
            raw_datagram=dgram.data,
            code=event.code,
            event_category=category,
            parsed=event.fields,
            valid=event.valid,
            error=event.error,
            processing_us=parse_us,
            tournament_uuid=day.tournament_uuid if day else None,
            tournament_day_uuid=day.day_uuid if day else None,
            match_uuid=match_uuid,
            match_number=number,
            rec_timestamp=None,
            str_timestamp=None,
            ivr_link=None,
        )
        return row, record

    def _link_match(self, event: PssEvent, match: _MatchLink | None, at_ms: int) -> _MatchLink | None:
        """``pre;FightLoaded`` opens a match; ``mch`` names it (the batch back-fills earlier rows)."""
        if not event.valid:
            return match
        if event.code == "pre":
            day = self.day
            match_uuid = uuid.uuid4().hex
            cur = self.conn.execute(
                "INSERT INTO matches (uuid, tournament_id, tournament_day_id, loaded_ms) VALUES (?, ?, ?, ?)",
                (match_uuid, day.tournament_id if day else None, day.day_id if day else None, at_ms),
            )
            return _MatchLink(cur.lastrowid or 0, match_uuid, None)
        if event.code == "mch" and match is not None and match.number is None:
            number = event.fields["match_number"]
            self.conn.execute("UPDATE matches SET match_number = ? WHERE id = ?", (number, match.id))
            return _MatchLink(match.id, match.uuid, number)
        return match

    # --- tournament context ---------------------------------------------------------

    def _load_active_day(self) -> DayContext | None:
        row = self.conn.execute(
            """SELECT t.id, t.uuid, t.name, d.id, d.uuid, d.day_number, d.date
               FROM tournament_days d JOIN tournaments t ON t.id = d.tournament_id
               WHERE d.is_active = 1 AND t.is_active = 1"""
        ).fetchone()
        return DayContext(*row) if row else None

    def _load_current_match(self) -> _MatchLink | None:
        row = self.conn.execute(
            "SELECT id, uuid, match_number FROM matches ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return _MatchLink(*row) if row else None

    def create_tournament(
        self,
        name: str,
        *,
        location: str | None = None,
        start_date: str | None = None,
        end_date: str | None = None,
        tournament_uuid: str | None = None,
    ) -> str:
        """A new tournament; returns its UUID (the key the master matches courts on)."""
        value = tournament_uuid or str(uuid.uuid4())
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO tournaments (uuid, name, location, start_date, end_date) VALUES (?, ?, ?, ?, ?)",
                (value, name, location, start_date, end_date),
            )
        return value

    def add_day(
        self, tournament: str, day_number: int, date: str, *, name: str | None = None, day_uuid: str | None = None
    ) -> str:
        """A day of a tournament (by UUID or name); returns the day's UUID.

        Derived from the tournament's UUID and the day number, so every court given the same
        tournament UUID names its days alike and the master sees one day, not one per court.
        """
        tournament_id = self._tournament_id(tournament)
        t_uuid = self.conn.execute("SELECT uuid FROM tournaments WHERE id = ?", (tournament_id,)).fetchone()[0]
        value = day_uuid or str(uuid.uuid5(uuid.UUID(t_uuid), f"day-{day_number}"))
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO tournament_days (uuid, tournament_id, day_number, date, name) VALUES (?, ?, ?, ?, ?)",
                (value, tournament_id, day_number, date, name),
            )
        return value

    def activate_day(self, tournament: str, day_number: int) -> DayContext:
        """Make one tournament day the context of every event stored from now on."""
        tournament_id = self._tournament_id(tournament)
        row = self.conn.execute(
            "SELECT id FROM tournament_days WHERE tournament_id = ? AND day_number = ?",
            (tournament_id, day_number),
        ).fetchone()
        if row is None:
            raise LookupError(f"tournament {tournament!r} has no day {day_number}")
        with transaction(self.conn):
            self.conn.execute("UPDATE tournaments SET is_active = (id = ?)", (tournament_id,))
            self.conn.execute("UPDATE tournament_days SET is_active = (id = ?)", (row[0],))
        self.day = self._load_active_day()
        assert self.day is not None
        return self.day

    def reload_context(self) -> None:
        """Pick up a tournament day activated by another process (the CLI)."""
        self.day = self._load_active_day()

    def tournaments(self) -> list[dict[str, Any]]:
        """Tournaments with their days, newest first."""
        cur = self.conn.execute(
            """SELECT t.uuid, t.name, t.location, t.is_active, d.day_number, d.date, d.uuid, d.is_active
               FROM tournaments t LEFT JOIN tournament_days d ON d.tournament_id = t.id
               ORDER BY t.id DESC, d.day_number"""
        )
        out: dict[str, dict[str, Any]] = {}
        for t_uuid, name, location, t_active, number, date, d_uuid, d_active in cur:
            entry = out.setdefault(
                t_uuid,
                {"uuid": t_uuid, "name": name, "location": location, "active": bool(t_active), "days": []},
            )
            if number is not None:
                entry["days"].append({"day_number": number, "date": date, "uuid": d_uuid, "active": bool(d_active)})
        return list(out.values())

    def _tournament_id(self, tournament: str) -> int:
        rows = self.conn.execute(
            "SELECT id FROM tournaments WHERE uuid = ? OR name = ?", (tournament, tournament)
        ).fetchall()
        if not rows:
            raise LookupError(f"no tournament named or with UUID {tournament!r}")
        if len(rows) > 1:
            raise LookupError(f"several tournaments are named {tournament!r}; use its UUID")
        return rows[0][0]

    def day_id(self, day: str) -> int:
        """A day by UUID, or ``<tournament>:<day number>``, or a bare number of the active tournament."""
        row = self.conn.execute("SELECT id FROM tournament_days WHERE uuid = ?", (day,)).fetchone()
        if row:
            return row[0]
        tournament, _, number = day.rpartition(":")
        if not number.isdigit():
            raise LookupError(f"no tournament day {day!r} (give a UUID, TOURNAMENT:N or N)")
        if tournament:
            tournament_id = self._tournament_id(tournament)
        elif self.day is not None:
            tournament_id = self.day.tournament_id
        else:
            raise LookupError("no active tournament: give the day as TOURNAMENT:N")
        row = self.conn.execute(
            "SELECT id FROM tournament_days WHERE tournament_id = ? AND day_number = ?",
            (tournament_id, int(number)),
        ).fetchone()
        if row is None:
            raise LookupError(f"no tournament day {day!r}")
        return row[0]

    # --- queries ------------------------------------------------------------------

    def events(self, flt: EventFilter = EventFilter()) -> list[EventRecord]:
        """Stored events matching a filter, in ``seq`` order."""
        where: list[str] = []
        args: list[Any] = []
        if flt.tournament is not None:
            where.append("e.tournament_id = ?")
            args.append(self._tournament_id(flt.tournament))
        if flt.day is not None:
            where.append("e.tournament_day_id = ?")
            args.append(self.day_id(flt.day))
        if flt.match_number is not None:
            where.append("e.match_number = ?")
            args.append(flt.match_number)
        if flt.categories:
            where.append(f"e.event_category IN ({', '.join('?' * len(flt.categories))})")
            args.extend(flt.categories)
        if flt.since_ms is not None:
            where.append("e.received_ms >= ?")
            args.append(flt.since_ms)
        if flt.until_ms is not None:
            where.append("e.received_ms <= ?")
            args.append(flt.until_ms)
        if flt.session_id is not None:
            where.append(
                """EXISTS (SELECT 1 FROM obs_sessions s WHERE s.id = ?
                   AND s.tournament_day_id = e.tournament_day_id AND e.received_ms >= s.start_ms
                   AND (s.end_ms IS NULL OR e.received_ms <= s.end_ms))"""
            )
            args.append(flt.session_id)
        sql = RECORD_SELECT
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY e.epoch = ? , e.id"  # rows of older epochs first, then this one
        args.append(self.epoch)
        if flt.limit is not None:
            sql += " LIMIT ?"
            args.append(flt.limit)
        return [row_to_record(row) for row in self.conn.execute(sql, args)]

    def count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM pss_events_v2").fetchone()[0]

    def close(self) -> None:
        self.conn.close()


def row_to_record(row: Iterable[Any]) -> EventRecord:
    (node_id, epoch, seq, received_ms, raw, raw_datagram, code, category, parsed, valid, error,
     processing_us, t_uuid, d_uuid, m_uuid, match_number, rec_ts, str_ts, ivr) = row
    return EventRecord.trusted(
        node_id=node_id,
        epoch=epoch,
        seq=seq,
        received_ms=received_ms,
        raw=raw,
        raw_datagram=bytes(raw_datagram),
        code=code,
        event_category=category,
        parsed=json.loads(parsed),
        valid=bool(valid),
        error=error,
        processing_us=processing_us,
        tournament_uuid=t_uuid,
        tournament_day_uuid=d_uuid,
        match_uuid=m_uuid,
        match_number=match_number,
        rec_timestamp=rec_ts,
        str_timestamp=str_ts,
        ivr_link=ivr,
    )


def read_page(
    conn: sqlite3.Connection, epoch: str, after_seq: int, limit: int, *, max_bytes: int | None = None
) -> list[EventRecord]:
    """Events of one epoch after a seq, in order: the catch-up query (uses the (epoch, seq) index).

    With ``max_bytes`` the page ends early once its raw text and datagrams add up to that much
    (it always holds at least one event), so huge junk datagrams cannot make a page unsendable.
    """
    records: list[EventRecord] = []
    size = 0
    for row in conn.execute(
        RECORD_SELECT + " WHERE e.epoch = ? AND e.seq > ? ORDER BY e.seq LIMIT ?", (epoch, after_seq, limit)
    ):
        record = row_to_record(row)
        records.append(record)
        size += len(record.raw_datagram) + len(record.raw)
        if max_bytes is not None and size >= max_bytes:
            break
    return records
