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

from runtime.errors import OperatorError
from shared.changes import EVENT_CHANGE_FIELDS
from shared.commands import day_uuid_of
from shared.match_snapshot import MatchSnapshot
from shared.match_state import MatchState, MatchStatus
from shared.pss import Category, PssEvent, parse_datagram
from shared.pss.kinds import EventKind, codes_of
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
    "NoDatabase",
    "StoreBusy",
    "StoreUnusable",
    "connect",
    "read_page",
    "row_to_record",
    "transaction",
]

logger = logging.getLogger(__name__)

DB_FILENAME = "restrike-slave.sqlite3"

EVENT_COLUMNS = (
    "node_id, epoch, seq, received_ms, source_addr, raw, raw_datagram, event_code, "
    "event_category, parsed_data, is_valid, error_message, is_resync, processing_us, tournament_id, "
    "tournament_day_id, match_id, match_number"
)
INSERT_EVENT = (
    f"INSERT INTO pss_events_v2 ({EVENT_COLUMNS}) "
    f"VALUES ({', '.join('?' * len(EVENT_COLUMNS.split(', ')))})"
)
RECORD_SELECT = """
    SELECT e.node_id, e.epoch, e.seq, e.received_ms, e.raw, e.raw_datagram, e.event_code,
           e.event_category, e.parsed_data, e.is_valid, e.error_message, e.is_resync, e.processing_us,
           t.uuid, d.uuid, m.uuid, e.match_number, e.rec_timestamp, e.str_timestamp, e.ivr_link,
           COALESCE(e.rev, 0)
    FROM pss_events_v2 e
    LEFT JOIN tournaments t ON t.id = e.tournament_id
    LEFT JOIN tournament_days d ON d.id = e.tournament_day_id
    LEFT JOIN matches m ON m.id = e.match_id
"""


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
#: The messages that open (``pre``) or name (``mch``) a match.
_MATCH_LINKING = frozenset({"pre", "mch"})

#: What ``_as_stored`` reads back: the changeable fields of an event and their revision.
_AS_STORED = (*EVENT_CHANGE_FIELDS, "rev")

#: Events whose first arrival is dated on the match row.
_MATCH_MILESTONES = {"rdy": "ready_ms", "win": "finished_ms", "wmh": "finished_ms"}


class NoDatabase(OperatorError):
    """A tool was pointed at a folder without a court database (only the agent creates one)."""

    exit_code = 2


class StoreUnusable(OperatorError):
    """The data folder or the database file cannot be used (permissions, not a database)."""

    exit_code = 2


class StoreBusy(Exception):
    """The database refused a write for now (locked, disk full); the batch must be retried."""


@dataclass(frozen=True, slots=True)
class Datagram:
    """A UDP datagram as the listener saw it, stamped at receipt."""

    received_ms: int
    data: bytes
    source: str | None = None
    #: An answer to our pull request (:mod:`slave_agent.resync`), not live traffic.
    resync: bool = False


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
    #: Finer than categories (``challenge``, ``clock`` ...), derived from the event code.
    kinds: tuple[EventKind, ...] = ()
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

    def __init__(self, data_dir: Path, *, node_id: str | None = None, synchronous: str = "FULL", create: bool = True):
        """Open the court's database; only with ``create`` (the agent) is a missing one made.

        Raises :class:`NoDatabase` without ``create`` when there is none, and
        :class:`StoreUnusable` when the folder or file cannot be used.
        """
        self.path = data_dir / DB_FILENAME
        if not create and not self.path.is_file():
            raise NoDatabase(f"no court database in {data_dir} ({self.path.resolve()} does not exist)")
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnusable(f"cannot create the data folder {data_dir}: {exc.strerror or exc}") from exc
        try:
            self.conn = connect(self.path, synchronous=synchronous)
            migrate(self.conn)
        except sqlite3.Error as exc:  # a read-only folder, a file that is not SQLite, a full disk
            raise StoreUnusable(f"cannot open the court database {self.path}: {exc}") from exc
        self.node_id, self.epoch = self._identity(node_id)
        row = self.conn.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM pss_events_v2 WHERE epoch = ?", (self.epoch,)
        ).fetchone()
        self.last_seq: int = row[0]
        self.day: DayContext | None = self._load_active_day()
        self._match = self._load_current_match()
        #: The current match folded from committed events (restarts empty: the next load fills it)
        #: and the last seq folded into it, swapped as one so another thread never pairs a state
        #: with another batch's seq.
        self._folded: tuple[MatchState, int] = (MatchState(), self.last_seq)

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
                        linked = self._link_match(event, match, dgram.received_ms, dgram.resync)
                        if linked is not None and linked is not match and linked.number is not None:
                            named_matches.append(linked)
                        if match is not None and linked is not None and linked.id != match.id:
                            self._save_match(match, state)  # the previous match's final state
                        match = linked
                    # An answer is the sender's last packet of a kind: its time dates no milestone.
                    folded = state.fold_answer(event) if dgram.resync else state.fold(event)
                    if folded and not dgram.resync and event.code in _MATCH_MILESTONES and match is not None:
                        self._mark_milestone(match, event.code, dgram.received_ms)
                    row, record = self._row(event, dgram, seq, match, parse_us)
                    rows.append(row)
                    records.append(record)
            self.conn.executemany(INSERT_EVENT, rows)
            if match is not None and rows:
                self._save_match(match, state)
            named = {m.uuid: m for m in named_matches}
            for m in named.values():  # a change of rows published before: the triggers give them a revision
                self.conn.execute(
                    "UPDATE pss_events_v2 SET match_number = ? WHERE match_id = ? AND match_number IS NULL",
                    (m.number, m.id),
                )
            if records and (named or self.day is not None):
                records = self._as_stored(records)
            self.conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:  # locked, busy, disk full, disk I/O: worth retrying
            self._rollback()
            raise StoreBusy(str(exc)) from exc
        except BaseException:  # anything else: leave no transaction open, let the caller decide
            self._rollback()
            raise
        self.last_seq, self._match, self._folded = seq, match, (state, seq)
        return records

    @property
    def match_state(self) -> MatchState:
        """The current match as folded from every committed event."""
        return self._folded[0]

    @property
    def current_match_uuid(self) -> str | None:
        """The UUID of the match the latest ``pre;FightLoaded`` opened (any thread)."""
        match = self._match
        return match.uuid if match is not None else None

    def match_snapshot(self) -> MatchSnapshot:
        """The current match with the seq it is folded up to (what heartbeats carry); any thread."""
        state, seq = self._folded
        return MatchSnapshot.of(state, seq)

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
            records = self._as_stored([record])
        self.last_seq, self._folded = seq, (self._folded[0], seq)  # an unparsed row changes no match
        return records

    def _as_stored(self, records: list[EventRecord]) -> list[EventRecord]:
        """The batch's records as its rows now read, so what is published is what is stored.

        The insert trigger stamps session times, naming a match fills its number in, and both
        leave a revision (``rev`` not NULL) on the rows they touched.
        """
        stored = {
            seq: dict(zip(_AS_STORED, values, strict=True))
            for seq, *values in self.conn.execute(
                f"""SELECT seq, {", ".join(_AS_STORED)} FROM pss_events_v2
                   WHERE epoch = ? AND seq BETWEEN ? AND ? AND rev IS NOT NULL""",
                (self.epoch, records[0].seq, records[-1].seq),
            )
        }
        if not stored:
            return records
        return [r.model_copy(update=stored[r.seq]) if r.seq in stored else r for r in records]

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
            event.code, category, _JSON.encode(event.fields), int(event.valid), event.error, int(dgram.resync),
            parse_us,
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
            resync=dgram.resync,
            processing_us=parse_us,
            tournament_uuid=day.tournament_uuid if day else None,
            tournament_day_uuid=day.day_uuid if day else None,
            match_uuid=match_uuid,
            match_number=number,
            rec_timestamp=None,
            str_timestamp=None,
            ivr_link=None,
            rev=0,
        )
        return row, record

    def _link_match(
        self, event: PssEvent, match: _MatchLink | None, at_ms: int, resync: bool
    ) -> _MatchLink | None:
        """``pre;FightLoaded`` opens a match; ``mch`` names it (the batch back-fills earlier rows).

        An ``mch`` *answer* naming another match than the current one also opens a match: the
        sender loaded it while this agent was not listening (its ``loaded_ms`` is then the answer's time).
        """
        if not event.valid:
            return match
        number = event.fields.get("match_number") if event.code == "mch" else None
        missed_load = resync and number is not None and (match is None or match.number not in (None, number))
        if event.code == "pre" or missed_load:
            day = self.day
            match_uuid = uuid.uuid4().hex
            cur = self.conn.execute(
                "INSERT INTO matches (uuid, tournament_id, tournament_day_id, match_number, loaded_ms) "
                "VALUES (?, ?, ?, ?, ?)",
                (match_uuid, day.tournament_id if day else None, day.day_id if day else None, number, at_ms),
            )
            return _MatchLink(cur.lastrowid or 0, match_uuid, number)
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
        value = day_uuid or day_uuid_of(t_uuid, day_number)
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

    def finish_day(self) -> None:
        """No tournament day in force: events stored from now on carry none."""
        with transaction(self.conn):
            self.conn.execute("UPDATE tournament_days SET is_active = 0")
            self.conn.execute("UPDATE tournaments SET is_active = 0")
        self.day = None

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
        return int(rows[0][0])

    def day_id(self, day: str) -> int:
        """A day by UUID, or ``<tournament>:<day number>``, or a bare number of the active tournament."""
        row = self.conn.execute("SELECT id FROM tournament_days WHERE uuid = ?", (day,)).fetchone()
        if row:
            return int(row[0])
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
        return int(row[0])

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
        if flt.kinds:
            known = codes_of(EventKind)
            wanted = sorted(codes_of(flt.kinds))
            terms = [f"e.event_code IN ({', '.join('?' * len(wanted))})"] if wanted else []
            args.extend(wanted)
            if EventKind.OTHER in flt.kinds:  # "other" is every code no kind lists
                terms.append(f"e.event_code NOT IN ({', '.join('?' * len(known))})")
                args.extend(sorted(known))
            where.append(f"({' OR '.join(terms)})")
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
        return int(self.conn.execute("SELECT COUNT(*) FROM pss_events_v2").fetchone()[0])

    def close(self) -> None:
        self.conn.close()


def row_to_record(row: Iterable[Any]) -> EventRecord:
    (node_id, epoch, seq, received_ms, raw, raw_datagram, code, category, parsed, valid, error, resync,
     processing_us, t_uuid, d_uuid, m_uuid, match_number, rec_ts, str_ts, ivr, rev) = row
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
        resync=bool(resync),
        processing_us=processing_us,
        tournament_uuid=t_uuid,
        tournament_day_uuid=d_uuid,
        match_uuid=m_uuid,
        match_number=match_number,
        rec_timestamp=rec_ts,
        str_timestamp=str_ts,
        ivr_link=ivr,
        rev=rev,
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
