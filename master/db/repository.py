"""The read side of the central database, for the master's services: typed rows in, typed rows out.

The services (``master/services/``) speak the operator's terms (a court name, "day 2") and
resolve them to the keys this module filters on. Nothing here writes what the courts send
(:class:`CentralStore` is their writer); the one write is the master's own: the IVR desk's
reviews. Synchronous like the store: the CLI calls it directly, code on the event loop calls it
in a thread. Driver errors come out as :class:`CentralStoreError` (unavailable:
:class:`CentralStoreUnavailable`), never as SQLAlchemy's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from types import TracebackType
from typing import Any, Self, overload

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    Table,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from master.db._engine import create_central_engine
from master.db.errors import CentralStoreError, CentralStoreUnavailable
from master.db.tables import DAYS, EVENTS, IVR_EVENTS, IVR_REVIEWS, MATCHES, NODES, OBS_SESSIONS, TOURNAMENTS
from shared.chapters import MatchStart
from shared.pss.kinds import EventKind, codes_of
from shared.records import EventRecord
from shared.stream_time import Session, SessionType

__all__ = [
    "CentralRepository",
    "DayRow",
    "EventFilter",
    "IvrFilter",
    "IvrRow",
    "MatchFilter",
    "MatchRow",
    "NodeRow",
    "RowPosition",
    "SessionSpan",
    "StoredEvent",
    "TournamentRow",
    "TriggerRow",
]

#: A replay without a review row is pending.
PENDING = "pending"
_RECORD_COLUMNS = [EVENTS.c[name] for name in EventRecord.model_fields]


@dataclass(frozen=True, slots=True)
class NodeRow:
    """A court's slave agent as the master last wrote it (``central_slave_nodes``)."""

    node_id: str
    court_name: str | None
    hostname: str | None
    version: str | None
    address: str | None
    router_port: int | None
    status: str
    last_seen: dt.datetime | None
    last_heartbeat_seq: int | None
    epoch: str | None
    cpu_percent: float | None
    memory_percent: float | None
    disk_free_bytes: int | None
    obs_rec_connected: bool
    obs_str_connected: bool
    recording: bool
    streaming: bool
    replay_buffer: bool
    current_scene: str | None
    #: The full OBS state and the current match as JSON (None in rows written before they existed).
    obs: dict[str, Any] | None
    match: dict[str, Any] | None
    #: When the master last wrote the row from a heartbeat (the master's clock).
    heard_at: dt.datetime | None
    approved: bool
    public_key: str | None
    offered_key: str | None
    offered_from: str | None


@dataclass(frozen=True, slots=True)
class TournamentRow:
    uuid: str
    name: str
    location: str | None
    start_date: dt.date | None
    end_date: dt.date | None


@dataclass(frozen=True, slots=True)
class DayRow:
    uuid: str
    tournament_uuid: str
    day_number: int
    date: dt.date | None


@dataclass(frozen=True, slots=True)
class TriggerRow:
    """What a court's instant-replay trigger did (``central_ivr_events``) and, for a replay, the desk's
    review of it (``central_ivr_reviews``), as a day's report needs them."""

    node_id: str
    trigger: str
    outcome: str
    match_number: str | None
    challenge_by: str | None
    challenge_result: str | None
    requested_ms: int
    finished_ms: int
    #: The desk's review state (pending while no review row), who set it and when.
    state: str
    reviewer: str | None
    reviewed_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class SessionSpan:
    """A court's OBS session as a time range (``end_ms`` None: still running)."""

    node_id: str
    start_ms: int
    end_ms: int | None


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events, in the database's keys; every part optional, all combined with AND."""

    node_ids: tuple[str, ...] = ()
    tournament_uuid: str | None = None
    day_uuid: str | None = None
    match_number: str | None = None
    categories: tuple[str, ...] = ()
    kinds: tuple[EventKind, ...] = ()
    since_ms: int | None = None
    until_ms: int | None = None
    #: Case-insensitive substring of the protocol line (``raw``); ``%`` and ``_`` are literal.
    text: str | None = None
    #: Only events inside one of these sessions (of their court).
    sessions: tuple[SessionSpan, ...] = ()


@dataclass(frozen=True, slots=True, order=True)
class RowPosition:
    """Where a row sits in a list's time order: its time (an event's receipt, a match's load), then
    the master's row id."""

    time_ms: int
    row_id: int


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the master holds it: the court's record, where it sits, when it was stored."""

    record: EventRecord
    position: RowPosition
    stored_at: dt.datetime


@dataclass(frozen=True, slots=True)
class MatchFilter:
    """Which matches, in the database's keys; every part optional, all combined with AND."""

    node_ids: tuple[str, ...] = ()
    tournament_uuid: str | None = None
    day_uuid: str | None = None
    match_number: str | None = None
    statuses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MatchRow:
    """A court's match as the master holds it (``central_matches``)."""

    uuid: str
    node_id: str
    tournament_uuid: str | None
    tournament_day_uuid: str | None
    match_number: str | None
    phase: str | None
    weight_class: str | None
    division: str | None
    blue_name: str | None
    blue_noc: str | None
    red_name: str | None
    red_noc: str | None
    status: str
    winner: str | None
    decision: str | None
    blue_rounds: int | None
    red_rounds: int | None
    loaded_ms: int
    ready_ms: int | None
    finished_ms: int | None
    position: RowPosition


@dataclass(frozen=True, slots=True)
class IvrFilter:
    """Which replays, in the database's keys; every part optional, all combined with AND."""

    node_ids: tuple[str, ...] = ()
    day_uuid: str | None = None
    #: Review states (pending includes replays nobody reviewed yet).
    states: tuple[str, ...] = ()
    uuids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IvrRow:
    """A court's replay (``central_ivr_events``, trigger ``replay``), its match and the master's review of it."""

    uuid: str
    node_id: str
    tournament_day_uuid: str | None
    match_number: str | None
    #: The trigger log's athletes, ``NAME (NOC)``; the match's fields when the match is known.
    blue: str | None
    red: str | None
    blue_name: str | None
    blue_noc: str | None
    red_name: str | None
    red_noc: str | None
    challenge_by: str | None
    challenge_result: str | None
    outcome: str
    reason: str | None
    clip_path: str | None
    clip_bytes: int | None
    requested_ms: int
    state: str
    notes: str
    reviewer: str | None
    reviewed_at: dt.datetime | None
    position: RowPosition


class CentralRepository:
    """Read queries on the central database (PostgreSQL or SQLite); thread-safe like its engine."""

    def __init__(self, engine: Engine, *, owns_engine: bool = False) -> None:
        self._engine = engine
        self._owns_engine = owns_engine

    @classmethod
    def open(cls, url: str) -> CentralRepository:
        """A repository with its own engine (the CLI); close it when done."""
        return cls(create_central_engine(url), owns_engine=True)

    def close(self) -> None:
        if self._owns_engine:
            self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # --- courts ---------------------------------------------------------------------------

    def nodes(self) -> list[NodeRow]:
        """Every court the master has heard of, by node id."""
        columns = [NODES.c[f.name] for f in fields(NodeRow)]
        with self._read() as connection:
            rows = connection.execute(select(*columns).order_by(NODES.c.node_id)).all()
        nodes = (NodeRow(*row) for row in rows)
        return [replace(n, last_seen=_utc(n.last_seen), heard_at=_utc(n.heard_at)) for n in nodes]

    def stored_seqs(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """Highest stored seq per ``(node_id, epoch)`` asked for (absent when nothing is stored)."""
        if not keys:
            return {}
        statement = (
            select(EVENTS.c.node_id, EVENTS.c.epoch, func.max(EVENTS.c.seq))
            .where(tuple_(EVENTS.c.node_id, EVENTS.c.epoch).in_(list(keys)))
            .group_by(EVENTS.c.node_id, EVENTS.c.epoch)
        )
        with self._read() as connection:
            return {(node_id, epoch): seq for node_id, epoch, seq in connection.execute(statement)}

    def event_counts(self) -> dict[str, int]:
        """Stored events per node id."""
        statement = select(EVENTS.c.node_id, func.count()).group_by(EVENTS.c.node_id)
        with self._read() as connection:
            return {node_id: count for node_id, count in connection.execute(statement)}

    # --- tournaments ------------------------------------------------------------------------

    def tournaments(self) -> list[TournamentRow]:
        """Every tournament, the latest first."""
        statement = select(
            TOURNAMENTS.c.uuid, TOURNAMENTS.c.name, TOURNAMENTS.c.location,
            TOURNAMENTS.c.start_date, TOURNAMENTS.c.end_date,
        ).order_by(TOURNAMENTS.c.start_date.desc().nulls_last(), TOURNAMENTS.c.id.desc())
        with self._read() as connection:
            return [TournamentRow(*row) for row in connection.execute(statement)]

    def days(self, tournament_uuid: str | None = None) -> list[DayRow]:
        """Days of one tournament (or of all), in day order."""
        statement = select(DAYS.c.uuid, DAYS.c.tournament_uuid, DAYS.c.day_number, DAYS.c.date)
        if tournament_uuid is not None:
            statement = statement.where(DAYS.c.tournament_uuid == tournament_uuid)
        statement = statement.order_by(DAYS.c.tournament_uuid, DAYS.c.day_number)
        with self._read() as connection:
            return [DayRow(*row) for row in connection.execute(statement)]

    def session_spans(
        self, node_ids: Sequence[str], day_uuid: str, session_type: str, number: int
    ) -> list[SessionSpan]:
        """The time range of session ``number`` of a type on a day, per court node that has one."""
        c = OBS_SESSIONS.c
        statement = (
            select(c.node_id, c.start_ms, c.end_ms)
            .where(c.node_id.in_(list(node_ids)), c.tournament_day_uuid == day_uuid,
                   c.session_type == session_type, c.session_number == number)
            .order_by(c.node_id)
        )
        with self._read() as connection:
            return [SessionSpan(*row) for row in connection.execute(statement)]

    def day_activity(self) -> list[tuple[str | None, str, int]]:
        """``(day uuid, node id, events)`` for every day and court that stored events (day None: untagged)."""
        statement = (
            select(EVENTS.c.tournament_day_uuid, EVENTS.c.node_id, func.count())
            .group_by(EVENTS.c.tournament_day_uuid, EVENTS.c.node_id)
            .order_by(EVENTS.c.tournament_day_uuid, EVENTS.c.node_id)
        )
        with self._read() as connection:
            return [(day, node, count) for day, node, count in connection.execute(statement)]

    # --- one day ---------------------------------------------------------------------------

    def day_categories(self, day_uuid: str) -> list[tuple[str, str, int]]:
        """``(node id, category, events)`` of one day."""
        c = EVENTS.c
        statement = (
            select(c.node_id, c.event_category, func.count())
            .where(c.tournament_day_uuid == day_uuid)
            .group_by(c.node_id, c.event_category)
            .order_by(c.node_id, c.event_category)
        )
        with self._read() as connection:
            return [(node, category, count) for node, category, count in connection.execute(statement)]

    def day_triggers(self, day_uuid: str) -> list[TriggerRow]:
        """Every instant-replay trigger of one day, per court in time order, replays with their review."""
        i, r = IVR_EVENTS.c, IVR_REVIEWS.c
        statement = (
            select(i.node_id, i.trigger, i.outcome, i.match_number, i.challenge_by, i.challenge_result, i.requested_ms,
                   i.finished_ms, func.coalesce(r.state, literal(PENDING)), r.reviewer, r.reviewed_at)
            .select_from(IVR_EVENTS.outerjoin(IVR_REVIEWS, r.ivr_uuid == i.uuid))
            .where(i.tournament_day_uuid == day_uuid)
            .order_by(i.node_id, i.requested_ms, i.id)
        )
        with self._read() as connection:
            rows = connection.execute(statement).all()
        return [replace(t, reviewed_at=_utc(t.reviewed_at)) for t in (TriggerRow(*row) for row in rows)]

    def match_starts(self, day_uuid: str, node_id: str) -> list[MatchStart]:
        """A court's ready moments (``rdy``) of one day in stream time, with their match (the court's
        ``youtube_chapters`` view, on the central tables)."""
        e, m = EVENTS.c, MATCHES.c
        statement = (
            select(e.str_timestamp, m.match_number, m.phase, m.weight_class, m.blue_name, m.blue_noc, m.red_name,
                   m.red_noc)
            .select_from(EVENTS.join(MATCHES, m.uuid == e.match_uuid))
            .where(e.tournament_day_uuid == day_uuid, e.node_id == node_id, e.code == "rdy", e.valid,
                   e.str_timestamp.is_not(None))
            .order_by(e.received_ms, e.id)
        )
        with self._read() as connection:
            return [MatchStart(*row) for row in connection.execute(statement)]

    def stream_sessions(self, day_uuid: str, node_id: str) -> list[Session]:
        """A court's stream sessions of one day, in start order."""
        c = OBS_SESSIONS.c
        statement = (
            select(c.session_number, c.start_ms, c.end_ms, c.time_offset_seconds, c.cumulative_offset_seconds)
            .where(c.tournament_day_uuid == day_uuid, c.node_id == node_id, c.session_type == SessionType.STREAM.value)
            .order_by(c.start_ms, c.session_number)
        )
        with self._read() as connection:
            return [
                Session(SessionType.STREAM, number, start, end, offset, cumulative)
                for number, start, end, offset, cumulative in connection.execute(statement)
            ]

    # --- events ---------------------------------------------------------------------------

    def events(
        self, flt: EventFilter, *, limit: int, newest_first: bool = True, after: RowPosition | None = None
    ) -> list[StoredEvent]:
        """A page of events in time order (receive time, then row id), starting after ``after``.

        Keyset paging: a page never shifts when events are added, and asking for the next page
        costs the same at the start and at the end of a long day.
        """
        statement = select(*_RECORD_COLUMNS, EVENTS.c.id, EVENTS.c.master_received_at).where(*self._where(flt))
        statement = _keyset(statement, (EVENTS.c.received_ms, EVENTS.c.id), newest_first, after).limit(limit)
        with self._read() as connection:
            rows = connection.execute(statement).all()
        width = len(_RECORD_COLUMNS)
        return [
            StoredEvent(
                record=EventRecord.model_validate(dict(zip(EventRecord.model_fields, row[:width], strict=True))),
                position=RowPosition(row.received_ms, row.id),
                stored_at=_utc(row.master_received_at),
            )
            for row in rows
        ]

    def count_events(self, flt: EventFilter) -> int:
        statement = select(func.count()).select_from(EVENTS).where(*self._where(flt))
        with self._read() as connection:
            return int(connection.execute(statement).scalar_one())

    # --- matches --------------------------------------------------------------------------

    def matches(
        self, flt: MatchFilter, *, limit: int, newest_first: bool = True, after: RowPosition | None = None
    ) -> list[MatchRow]:
        """A page of matches in load order (load time, then row id), starting after ``after``."""
        c = MATCHES.c
        where = _scope_terms(MATCHES, flt)
        if flt.statuses:
            where.append(c.status.in_(flt.statuses))
        names = [f.name for f in fields(MatchRow) if f.name != "position"]
        statement = _keyset(select(*(c[n] for n in names), c.id).where(*where), (c.loaded_ms, c.id), newest_first, after)
        with self._read() as connection:
            rows = connection.execute(statement.limit(limit)).mappings().all()
        return [MatchRow(**{n: row[n] for n in names}, position=RowPosition(row["loaded_ms"], row["id"])) for row in rows]

    def day_matches(self) -> list[tuple[str | None, str, int]]:
        """``(day uuid, node id, matches)`` for every day and court that loaded matches."""
        c = MATCHES.c
        statement = (
            select(c.tournament_day_uuid, c.node_id, func.count())
            .group_by(c.tournament_day_uuid, c.node_id)
            .order_by(c.tournament_day_uuid, c.node_id)
        )
        with self._read() as connection:
            return [(day, node, count) for day, node, count in connection.execute(statement)]

    # --- IVR desk ---------------------------------------------------------------------------

    def replays(
        self, flt: IvrFilter, *, limit: int, newest_first: bool = True, after: RowPosition | None = None
    ) -> list[IvrRow]:
        """A page of replays in request order (court's request time, then row id) with their reviews."""
        i, m, r = IVR_EVENTS.c, MATCHES.c, IVR_REVIEWS.c
        state = func.coalesce(r.state, literal(PENDING))
        where: list[ColumnElement[bool]] = [i.trigger == "replay"]
        if flt.node_ids:
            where.append(i.node_id.in_(flt.node_ids))
        if flt.day_uuid is not None:
            where.append(i.tournament_day_uuid == flt.day_uuid)
        if flt.states:
            where.append(state.in_(flt.states))
        if flt.uuids:
            where.append(i.uuid.in_(flt.uuids))
        statement = (
            select(
                i.uuid, i.node_id, i.tournament_day_uuid, i.match_number, i.blue, i.red, m.blue_name, m.blue_noc,
                m.red_name, m.red_noc, i.challenge_by, i.challenge_result, i.outcome, i.reason, i.clip_path,
                i.clip_bytes, i.requested_ms, state.label("state"), func.coalesce(r.notes, "").label("notes"),
                r.reviewer, r.reviewed_at, i.id,
            )
            .select_from(IVR_EVENTS.outerjoin(MATCHES, m.uuid == i.match_uuid).outerjoin(IVR_REVIEWS, r.ivr_uuid == i.uuid))
            .where(*where)
        )
        statement = _keyset(statement, (i.requested_ms, i.id), newest_first, after).limit(limit)
        with self._read() as connection:
            rows = connection.execute(statement).all()
        return [
            IvrRow(*row[:-2], _utc(row.reviewed_at), RowPosition(row.requested_ms, row.id))  # type: ignore[call-arg]
            for row in rows
        ]

    def replay_of_clip(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The replay UUID of each ``(node id, clip path)`` asked for that a court reported (absent: none)."""
        if not pairs:
            return {}
        i = IVR_EVENTS.c
        statement = select(i.node_id, i.clip_path, i.uuid).where(
            i.trigger == "replay", tuple_(i.node_id, i.clip_path).in_(list(pairs))
        )
        with self._read() as connection:
            return {(node, path): uuid for node, path, uuid in connection.execute(statement)}

    def set_reviews(
        self, uuids: Sequence[str], state: str, reviewer: str, at: dt.datetime, notes: str | None = None
    ) -> list[str]:
        """Set the review state of these replays (and their notes, unless None); returns the UUIDs
        written, in the order given: those of replays the master holds.

        ``reviewer`` and ``reviewed_at`` change only with the state, so a note added later does
        not move the time a replay was reviewed.
        """
        i, r = IVR_EVENTS.c, IVR_REVIEWS.c
        with self._write() as connection:
            known = set(connection.execute(select(i.uuid).where(i.trigger == "replay", i.uuid.in_(list(uuids)))).scalars())
            found = [uuid for uuid in dict.fromkeys(uuids) if uuid in known]
            if not found:
                return []
            insert = self._insert(connection)
            statement = insert.values([
                {"ivr_uuid": uuid, "state": state, "notes": notes or "", "reviewer": reviewer, "reviewed_at": at,
                 "updated_at": at}
                for uuid in found
            ])
            excluded = statement.excluded
            changed = r.state != excluded.state
            values: dict[str, Any] = {
                "state": excluded.state,
                "reviewer": case((changed, excluded.reviewer), else_=r.reviewer),
                "reviewed_at": case((changed, excluded.reviewed_at), else_=r.reviewed_at),
                "updated_at": excluded.updated_at,
            }
            if notes is not None:
                values["notes"] = excluded.notes
            connection.execute(statement.on_conflict_do_update(index_elements=[r.ivr_uuid], set_=values))
        return found

    def _where(self, flt: EventFilter) -> list[ColumnElement[bool]]:
        c = EVENTS.c
        where = _scope_terms(EVENTS, flt)
        if flt.categories:
            where.append(c.event_category.in_(flt.categories))
        if flt.kinds:
            terms = [c.code.in_(sorted(codes_of(flt.kinds)))]
            if EventKind.OTHER in flt.kinds:  # "other" is every code no kind lists
                terms.append(c.code.not_in(sorted(codes_of(EventKind))))
            where.append(or_(*terms) if len(terms) > 1 else terms[0])
        if flt.since_ms is not None:
            where.append(c.received_ms >= flt.since_ms)
        if flt.until_ms is not None:
            where.append(c.received_ms <= flt.until_ms)
        if flt.text:
            where.append(c.raw.ilike(f"%{_escape_like(flt.text)}%", escape="\\"))
        if flt.sessions:
            where.append(or_(*(
                and_(c.node_id == span.node_id, c.received_ms >= span.start_ms,
                     *([c.received_ms <= span.end_ms] if span.end_ms is not None else []))
                for span in flt.sessions
            )))
        return where

    # --- helpers --------------------------------------------------------------------------

    def _insert(self, connection: Connection) -> Any:
        """The dialect's INSERT (both have ON CONFLICT), for the one upsert here."""
        return (postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert)(IVR_REVIEWS)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._read(begin=True) as connection:
            yield connection

    @contextmanager
    def _read(self, begin: bool = False) -> Iterator[Connection]:
        try:
            with self._engine.begin() if begin else self._engine.connect() as connection:
                yield connection
        except (OperationalError, PoolTimeoutError) as exc:
            raise CentralStoreUnavailable(f"central database unavailable: {getattr(exc, 'orig', None) or exc}") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise CentralStoreUnavailable(f"central database unavailable: {exc.orig}") from exc
            raise CentralStoreError(f"central database refused the query: {exc.orig}") from exc


def _scope_terms(table: Table, flt: EventFilter | MatchFilter) -> list[ColumnElement[bool]]:
    """The court, tournament, day and match terms the event and match lists share (same columns in both)."""
    c = table.c
    where: list[ColumnElement[bool]] = []
    if flt.node_ids:
        where.append(c.node_id.in_(flt.node_ids))
    if flt.tournament_uuid is not None:
        where.append(c.tournament_uuid == flt.tournament_uuid)
    if flt.day_uuid is not None:
        where.append(c.tournament_day_uuid == flt.day_uuid)
    if flt.match_number is not None:
        where.append(c.match_number == flt.match_number)
    return where


def _keyset(
    statement: Select[Any], order: tuple[ColumnElement[Any], ColumnElement[Any]], newest_first: bool,
    after: RowPosition | None,
) -> Select[Any]:
    """Rows after ``after`` in the time order ``order`` (time, row id), newest or oldest first."""
    if after is not None:
        key, bound = tuple_(*order), tuple_(after.time_ms, after.row_id)
        statement = statement.where(key < bound if newest_first else key > bound)
    return statement.order_by(*(c.desc() if newest_first else c.asc() for c in order))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@overload
def _utc(moment: dt.datetime) -> dt.datetime: ...
@overload
def _utc(moment: dt.datetime | None) -> dt.datetime | None: ...
def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; the master writes UTC."""
    return moment if moment is None or moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
