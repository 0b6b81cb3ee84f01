"""The master's central store: exactly-once storage of every court's events, the courts'
row changes (events' later fields, matches, OBS sessions), node and tournament bookkeeping.

Synchronous on purpose: the async subscriber calls it from one worker thread. Every
write is idempotent, so a batch that failed with :class:`CentralStoreUnavailable` can
be retried as it is, even if the failure hid a successful commit.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import Column, Connection, Engine, MetaData, Table, bindparam, case, event, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.schema import CreateTable

from master.approvals import CourtApproval, Verdict, judge
from master.db._engine import create_central_engine
from master.db.errors import CentralDatabaseUnusable, CentralStoreError, CentralStoreUnavailable
from master.db.tables import CHANGE_CURSORS, DAYS, EVENTS, IVR_EVENTS, MATCHES, NODES, OBS_SESSIONS, TOURNAMENTS
from shared.changes import EVENT_CHANGE_FIELDS, EventChange, IvrEventRecord, MatchRecord, RowChange, SessionRecord
from shared.records import EventRecord

__all__ = ["SQLITE_FILE_NAME", "CentralStore", "ChangeSet", "default_sqlite_url"]

logger = logging.getLogger(__name__)

SQLITE_FILE_NAME = "central.sqlite3"

_EVENT_KEY = [EVENTS.c.node_id, EVENTS.c.epoch, EVENTS.c.seq]
_RECORD_FIELDS = tuple(EventRecord.model_fields)
_RECORD_COLUMNS = [EVENTS.c[name] for name in _RECORD_FIELDS]
_INSERTED_COLUMNS = [*_RECORD_COLUMNS, EVENTS.c.master_received_at]

_SQLITE_INSERT = (
    sqlite.insert(EVENTS).on_conflict_do_nothing(index_elements=_EVENT_KEY).returning(EVENTS.c.node_id)
)
# PostgreSQL bulk path: per-connection temporary table, emptied at every commit.
_STAGING = Table(
    "central_pss_events_staging",
    MetaData(),
    *(Column(column.name, column.type) for column in _INSERTED_COLUMNS),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
)
_STAGING_TYPES = [
    re.sub(r"\(.*\)", "", column.type.compile(dialect=postgresql.dialect())).lower()  # type: ignore[no-untyped-call]
    for column in _STAGING.c
]
_COPY_SQL = f"COPY {_STAGING.name} ({', '.join(_STAGING.c.keys())}) FROM STDIN (FORMAT BINARY)"
_PG_INSERT_FROM_STAGING = (
    postgresql.insert(EVENTS)
    .from_select(_INSERTED_COLUMNS, select(_STAGING))
    .on_conflict_do_nothing(index_elements=_EVENT_KEY)
    .returning(EVENTS.c.node_id)
)
_NODE_FIELDS = frozenset(NODES.c.keys()) - {"id", "node_id"}
#: Node states that only an approval changes (never a heartbeat).
_NOT_LINKED = ("pending", "revoked")
_SESSION_KEY = [
    OBS_SESSIONS.c.node_id,
    OBS_SESSIONS.c.tournament_day_uuid,
    OBS_SESSIONS.c.session_type,
    OBS_SESSIONS.c.session_number,
]
# The state a row change carries, column by column (the model's fields less its discriminator).
_MATCH_FIELDS = tuple(name for name in MatchRecord.model_fields if name != "kind")
_SESSION_FIELDS = tuple(name for name in SessionRecord.model_fields if name != "kind")
_IVR_FIELDS = tuple(name for name in IvrEventRecord.model_fields if name != "kind")
# An event change updates the row only if it is newer than the state the row holds.
_EVENT_CHANGE = (
    update(EVENTS)
    .where(
        EVENTS.c.node_id == bindparam("b_node_id"),
        EVENTS.c.epoch == bindparam("b_epoch"),
        EVENTS.c.seq == bindparam("b_seq"),
        EVENTS.c.rev < bindparam("b_rev"),
    )
    .values({name: bindparam(f"b_{name}") for name in (*EVENT_CHANGE_FIELDS, "rev")})
)


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """One court database's row changes, in revision order, and the revision its cursor moves to."""

    node_id: str
    epoch: str
    changes: list[RowChange]
    through_rev: int


def default_sqlite_url(data_dir: Path) -> str:
    """The zero-set-up central database inside ``data_dir`` (created if missing)."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CentralDatabaseUnusable(f"cannot create the data folder {data_dir}: {exc.strerror or exc}", 2) from exc
    return f"sqlite:///{(data_dir / SQLITE_FILE_NAME).resolve()}"


class CentralStore:
    """Central database access for the master (PostgreSQL or SQLite); thread-safe.

    The schema must exist: run :func:`master.db.migrate.upgrade` first.
    """

    def __init__(self, url: str) -> None:
        self._engine = create_central_engine(url)
        self._postgresql = self._engine.dialect.name == "postgresql"
        if self._postgresql:
            event.listen(self._engine, "connect", _create_staging)
        self._insert: Callable[[Table], Any] = postgresql.insert if self._postgresql else sqlite.insert
        self._nul_warned = False

    @property
    def engine(self) -> Engine:
        """For read-only services (console queries) and maintenance tools."""
        return self._engine

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- events ---------------------------------------------------------------------

    def insert_events(self, records: Sequence[EventRecord]) -> int:
        """Store a batch in one transaction, skipping rows already stored; returns how many
        were new. Also counts them on their nodes (received, stored) in the same transaction.
        """
        return self.write(records, ())

    def write(self, records: Sequence[EventRecord], change_sets: Sequence[ChangeSet]) -> int:
        """Events (as :meth:`insert_events`), then row changes (as :meth:`apply_changes`), in ONE
        transaction: the master's group commit pays one commit for every court's work of a round.
        Returns how many events were new."""
        if not records and not change_sets:
            return 0
        with self._begin() as connection:
            stored = self._insert_events(connection, records)
            for change_set in change_sets:
                self._apply_changes(connection, change_set)
        return stored

    def _insert_events(self, connection: Connection, records: Sequence[EventRecord]) -> int:
        if not records:
            return 0
        now = dt.datetime.now(dt.UTC)
        received = Counter(record.node_id for record in records)
        if self._postgresql:
            stored = Counter(self._copy_insert(connection, records, now))
        else:
            rows = [_sqlite_row(record, now) for record in records]
            stored = Counter(connection.execute(_SQLITE_INSERT, rows).scalars())
        for node_id in sorted(received):  # one lock order, so concurrent batches cannot deadlock
            connection.execute(
                update(NODES)
                .where(NODES.c.node_id == node_id)
                .values(
                    events_received=NODES.c.events_received + received[node_id],
                    events_stored=NODES.c.events_stored + stored[node_id],
                )
            )
        return stored.total()

    # --- row changes ---------------------------------------------------------------------

    def apply_changes(self, node_id: str, epoch: str, changes: Sequence[RowChange], through_rev: int) -> None:
        """Apply a court's row changes and move its change cursor to ``through_rev``, in one transaction.

        A row takes a change only if it is newer than the state it holds (a higher revision;
        for matches and sessions also a state from another database file of the court, whose
        revisions start again). An event change for an event not stored here changes nothing:
        the link hands changes over only after the events they refer to.
        """
        self.write((), [ChangeSet(node_id, epoch, list(changes), through_rev)])

    def _apply_changes(self, connection: Connection, change_set: ChangeSet) -> None:
        node_id, epoch = change_set.node_id, change_set.epoch
        latest: dict[tuple[Any, ...], RowChange] = {}
        for change in change_set.changes:  # state, not deltas: only the newest state of each row matters
            key = _row_key(change)
            if key not in latest or latest[key].rev < change.rev:
                latest[key] = change
        events = [c for c in latest.values() if isinstance(c, EventChange)]
        matches = [c for c in latest.values() if isinstance(c, MatchRecord)]
        sessions = [c for c in latest.values() if isinstance(c, SessionRecord)]
        ivr_events = [c for c in latest.values() if isinstance(c, IvrEventRecord)]
        if events:
            connection.execute(
                _EVENT_CHANGE,
                [{f"b_{name}": value for name, value in c.model_dump(exclude={"kind"}).items()} for c in events],
            )
        if matches:
            connection.execute(
                self._newer_upsert(MATCHES, [MATCHES.c.uuid]),
                [{**c.model_dump(exclude={"kind"}), "node_id": node_id, "epoch": epoch} for c in matches],
            )
        if sessions:
            connection.execute(
                self._newer_upsert(OBS_SESSIONS, _SESSION_KEY),
                [{**c.model_dump(exclude={"kind"}), "node_id": node_id, "epoch": epoch} for c in sessions],
            )
        if ivr_events:
            connection.execute(
                self._newer_upsert(IVR_EVENTS, [IVR_EVENTS.c.uuid]),
                [{**c.model_dump(exclude={"kind"}), "node_id": node_id, "epoch": epoch} for c in ivr_events],
            )
        statement = self._insert(CHANGE_CURSORS).values(node_id=node_id, epoch=epoch, rev=change_set.through_rev)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=[CHANGE_CURSORS.c.node_id, CHANGE_CURSORS.c.epoch],
                set_={"rev": statement.excluded.rev},
                where=CHANGE_CURSORS.c.rev < statement.excluded.rev,
            )
        )

    def _newer_upsert(self, table: Table, key: list[Column[Any]]) -> Any:
        """Insert a row, or replace the held one when the incoming state is newer."""
        statement = self._insert(table)
        keys = {column.name for column in key}
        fields = [name for name in (*_field_names(table), "node_id", "epoch") if name not in keys]
        return statement.on_conflict_do_update(
            index_elements=key,
            set_={name: statement.excluded[name] for name in fields},
            where=or_(table.c.epoch.is_distinct_from(statement.excluded.epoch), table.c.rev < statement.excluded.rev),
        )

    def change_cursor(self, node_id: str) -> dict[str, int]:
        """Per database epoch of a court, the revision up to which its row changes are applied."""
        statement = select(CHANGE_CURSORS.c.epoch, CHANGE_CURSORS.c.rev).where(CHANGE_CURSORS.c.node_id == node_id)
        with self._begin() as connection:
            return {epoch: rev for epoch, rev in connection.execute(statement)}

    def fetch_matches(self, node_id: str) -> list[MatchRecord]:
        """A court's matches as its database holds them, in load order."""
        statement = (
            select(*(MATCHES.c[name] for name in _MATCH_FIELDS))
            .where(MATCHES.c.node_id == node_id)
            .order_by(MATCHES.c.loaded_ms, MATCHES.c.uuid)
        )
        with self._begin() as connection:
            return [MatchRecord.model_validate(dict(row)) for row in connection.execute(statement).mappings()]

    def fetch_ivr_events(self, node_id: str) -> list[IvrEventRecord]:
        """A court's trigger log (match ready, replay, review over), oldest first."""
        statement = (
            select(*(IVR_EVENTS.c[name] for name in _IVR_FIELDS))
            .where(IVR_EVENTS.c.node_id == node_id)
            .order_by(IVR_EVENTS.c.requested_ms, IVR_EVENTS.c.uuid)
        )
        with self._begin() as connection:
            return [IvrEventRecord.model_validate(dict(row)) for row in connection.execute(statement).mappings()]

    def fetch_sessions(self, node_id: str) -> list[SessionRecord]:
        """A court's OBS sessions, by day, type and number."""
        statement = (
            select(*(OBS_SESSIONS.c[name] for name in _SESSION_FIELDS))
            .where(OBS_SESSIONS.c.node_id == node_id)
            .order_by(OBS_SESSIONS.c.tournament_day_uuid, OBS_SESSIONS.c.session_type, OBS_SESSIONS.c.session_number)
        )
        with self._begin() as connection:
            return [SessionRecord.model_validate(dict(row)) for row in connection.execute(statement).mappings()]

    def last_stored(self, node_id: str) -> dict[str, int]:
        """Highest stored ``seq`` per epoch of a node: where its catch-up resumes."""
        statement = (
            select(EVENTS.c.epoch, func.max(EVENTS.c.seq))
            .where(EVENTS.c.node_id == node_id)
            .group_by(EVENTS.c.epoch)
        )
        with self._begin() as connection:
            return {epoch: seq for epoch, seq in connection.execute(statement)}

    def last_seq(self, node_id: str, epoch: str) -> int:
        """Highest stored ``seq`` of one epoch of a node, 0 when nothing is stored."""
        statement = select(func.coalesce(func.max(EVENTS.c.seq), 0)).where(
            EVENTS.c.node_id == node_id, EVENTS.c.epoch == epoch
        )
        with self._begin() as connection:
            return int(connection.execute(statement).scalar_one())

    def count_events(self, node_id: str | None = None) -> int:
        """Stored events, of one node or of all."""
        statement = select(func.count()).select_from(EVENTS)
        if node_id is not None:
            statement = statement.where(EVENTS.c.node_id == node_id)
        with self._begin() as connection:
            return int(connection.execute(statement).scalar_one())

    def fetch_events(self, node_id: str, epoch: str) -> list[EventRecord]:
        """One epoch of a node as the slave stored it, in ``seq`` order."""
        statement = (
            select(*_RECORD_COLUMNS)
            .where(EVENTS.c.node_id == node_id, EVENTS.c.epoch == epoch)
            .order_by(EVENTS.c.seq)
        )
        with self._begin() as connection:
            rows = connection.execute(statement).mappings().all()
        return [EventRecord.model_validate(dict(row)) for row in rows]

    # --- nodes ----------------------------------------------------------------------

    def upsert_node(self, node_id: str, **fields: Any) -> None:
        """Create the node or update the given columns of it (see :class:`CentralSlaveNode`)."""
        unknown = fields.keys() - _NODE_FIELDS
        if unknown:
            raise TypeError(f"unknown node field(s): {', '.join(sorted(unknown))}")
        statement = self._insert(NODES).values(node_id=node_id, **fields)
        if fields:
            updates: dict[str, Any] = dict(fields)
            if "status" in fields:  # a late heartbeat of a court revoked meanwhile must not bring it back
                updates["status"] = case(
                    (NODES.c.status.in_(_NOT_LINKED), NODES.c.status), else_=statement.excluded.status
                )
            statement = statement.on_conflict_do_update(index_elements=[NODES.c.node_id], set_=updates)
        else:
            statement = statement.on_conflict_do_nothing(index_elements=[NODES.c.node_id])
        with self._begin() as connection:
            connection.execute(statement)

    def mark_offline(self, node_id: str) -> None:
        """Flag an online node offline (missed heartbeats); unknown, pending and revoked nodes are left alone."""
        statement = update(NODES).where(NODES.c.node_id == node_id, NODES.c.status == "online").values(status="offline")
        with self._begin() as connection:
            connection.execute(statement)

    def list_nodes(self) -> list[dict[str, Any]]:
        """Every known node with all its columns, by ``node_id``."""
        with self._begin() as connection:
            rows = connection.execute(select(NODES).order_by(NODES.c.node_id)).mappings().all()
        return [dict(row) for row in rows]

    # --- court approval (CURVE keys) ------------------------------------------------------

    def offer_court(
        self, node_id: str, key: str | None, *, court_name: str | None, address: str, pub_port: int, router_port: int
    ) -> CourtApproval:
        """Record a court found by mDNS or configured: a new node is pending; another key than the
        pinned one is remembered as refused. Returns the node's approval after the offer."""
        now = dt.datetime.now(dt.UTC)
        with self._begin() as connection:
            row = connection.execute(select(NODES).where(NODES.c.node_id == node_id)).mappings().first()
            current = _approval(row) if row is not None else None
            verdict = judge(current, key)
            if row is None:
                connection.execute(NODES.insert().values(
                    node_id=node_id, status="pending", approved=False, court_name=court_name, address=address,
                    pub_port=pub_port, router_port=router_port, offered_key=key, offered_at=now, offered_from=address,
                ))
            elif verdict is Verdict.REFUSED or (verdict is not Verdict.APPROVED and key is not None):
                connection.execute(update(NODES).where(NODES.c.node_id == node_id).values(
                    offered_key=key, offered_at=now, offered_from=address,
                ))
            row = connection.execute(select(NODES).where(NODES.c.node_id == node_id)).mappings().one()
        return _approval(row)

    def approve_court(self, node_id: str, key: str | None = None, *, by: str, replace: bool = False) -> CourtApproval:
        """Pin ``key`` (default: the key the court offered) for a node; raises ``LookupError`` or
        ``ValueError`` with what the director should do instead."""
        with self._begin() as connection:
            row = connection.execute(select(NODES).where(NODES.c.node_id == node_id)).mappings().first()
            current = _approval(row) if row is not None else None
            pinned = key or (current.offered_key if current else None)
            if pinned is None:
                raise LookupError(
                    f"node {node_id!r} has offered no key (not found by mDNS yet, or a configured address): "
                    "give the court's key with --key (on the court: `restrike keys show court`)"
                )
            if current is not None and current.approved and current.public_key not in (None, pinned) and not replace:
                raise ValueError(
                    f"node {node_id!r} is already approved with another key; pass --replace to pin the new one "
                    "(only if you know the court's laptop or keys were replaced)"
                )
            values = {
                "approved": True, "public_key": pinned, "approved_at": dt.datetime.now(dt.UTC), "approved_by": by,
                "offered_key": None, "offered_at": None, "offered_from": None,
            }
            if current is None:
                connection.execute(NODES.insert().values(node_id=node_id, status="offline", **values))
            else:
                status = "offline" if current.status in ("pending", "revoked") else current.status
                connection.execute(update(NODES).where(NODES.c.node_id == node_id).values(status=status, **values))
            row = connection.execute(select(NODES).where(NODES.c.node_id == node_id)).mappings().one()
        return _approval(row)

    def revoke_court(self, node_id: str) -> CourtApproval:
        """Withdraw a node's approval: the master drops its link and ignores it from now on."""
        with self._begin() as connection:
            result = connection.execute(update(NODES).where(NODES.c.node_id == node_id).values(
                approved=False, public_key=None, status="revoked",
            ))
            if result.rowcount == 0:
                raise LookupError(f"no court with node id {node_id!r} (see `restrike master status`)")
            row = connection.execute(select(NODES).where(NODES.c.node_id == node_id)).mappings().one()
        return _approval(row)

    def court_approvals(self) -> dict[str, CourtApproval]:
        """Every node's approval, by node id."""
        with self._begin() as connection:
            rows = connection.execute(select(NODES)).mappings().all()
        return {row["node_id"]: _approval(row) for row in rows}

    # --- tournaments ----------------------------------------------------------------------

    def upsert_tournament(
        self,
        uuid: str,
        name: str,
        *,
        location: str | None = None,
        start_date: dt.date | None = None,
        end_date: dt.date | None = None,
    ) -> None:
        """Create or replace a tournament by the UUID the slaves share."""
        values = {"name": name, "location": location, "start_date": start_date, "end_date": end_date}
        statement = (
            self._insert(TOURNAMENTS)
            .values(uuid=uuid, **values)
            .on_conflict_do_update(
                index_elements=[TOURNAMENTS.c.uuid], set_={**values, "updated_at": func.now()}
            )
        )
        with self._begin() as connection:
            connection.execute(statement)

    def upsert_day(
        self,
        uuid: str,
        tournament_uuid: str,
        day_number: int,
        date: dt.date | None,
        *,
        name: str | None = None,
    ) -> None:
        """Create or replace a tournament day by its UUID; its tournament must exist."""
        values = {"tournament_uuid": tournament_uuid, "day_number": day_number, "date": date, "name": name}
        statement = (
            self._insert(DAYS)
            .values(uuid=uuid, **values)
            .on_conflict_do_update(index_elements=[DAYS.c.uuid], set_=values)
        )
        with self._begin() as connection:
            connection.execute(statement)

    def note_day(
        self, tournament_uuid: str, tournament_name: str, day_uuid: str, day_number: int, date: dt.date | None
    ) -> None:
        """A tournament day a court works under, written only if the master does not know it yet: what
        the director entered at the master (location, dates) is never overwritten by a heartbeat."""
        with self._begin() as connection:
            connection.execute(
                self._insert(TOURNAMENTS).values(uuid=tournament_uuid, name=tournament_name)
                .on_conflict_do_nothing(index_elements=[TOURNAMENTS.c.uuid])
            )
            connection.execute(
                self._insert(DAYS).values(uuid=day_uuid, tournament_uuid=tournament_uuid, day_number=day_number,
                                           date=date)
                .on_conflict_do_nothing(index_elements=[DAYS.c.uuid])
            )

    # --- helpers ----------------------------------------------------------------------

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A transaction whose driver errors come out as :class:`CentralStoreError`s."""
        try:
            with self._engine.begin() as connection:
                yield connection
        except (OperationalError, PoolTimeoutError) as exc:
            raise _unavailable(exc) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise _unavailable(exc) from exc
            raise CentralStoreError(f"central database refused the operation: {exc.orig}") from exc
        # The COPY path talks to psycopg directly, so its errors arrive unwrapped.
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise _unavailable(exc) from exc
        except psycopg.Error as exc:
            raise CentralStoreError(f"central database refused the operation: {exc}") from exc

    def _copy_insert(
        self, connection: Connection, records: Sequence[EventRecord], now: dt.datetime
    ) -> list[str]:
        """PostgreSQL: binary COPY into a session-local staging table, then one
        ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``; several times faster than any
        multi-row INSERT through the driver. Returns the node id of every new row."""
        driver = connection.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        with driver.cursor() as cursor, cursor.copy(_COPY_SQL) as copy:
            copy.set_types(_STAGING_TYPES)
            for record in records:
                copy.write_row(self._pg_row(record, now))
        return list(connection.execute(_PG_INSERT_FROM_STAGING).scalars())

    def _pg_row(self, record: EventRecord, now: dt.datetime) -> list[Any]:
        row: list[Any] = []
        for name in _RECORD_FIELDS:
            value = getattr(record, name)
            if isinstance(value, str) and "\x00" in value:
                value = self._escape_nul(value, record)
            elif name == "parsed":
                value = Jsonb(value, dumps=_json_dumps_without_nul)
            row.append(value)
        row.append(now)
        return row

    def _escape_nul(self, value: str, record: EventRecord) -> str:
        if not self._nul_warned:
            self._nul_warned = True
            logger.warning(
                "PostgreSQL cannot store NUL characters: written as \\x00 in text columns "
                "(first in %s/%s/%s; raw_datagram keeps the exact bytes)",
                record.node_id,
                record.epoch,
                record.seq,
            )
        return value.replace("\x00", "\\x00")


def _unavailable(exc: Exception) -> CentralStoreUnavailable:
    """The caller decides what to say: the master's DbWorker logs the outage once, a CLI reports it."""
    reason = str(getattr(exc, "orig", None) or exc).strip()
    return CentralStoreUnavailable(f"central database unavailable: {reason}")


def _row_key(change: RowChange) -> tuple[Any, ...]:
    if isinstance(change, EventChange):
        return ("event", change.node_id, change.epoch, change.seq)
    if isinstance(change, MatchRecord):
        return ("match", change.uuid)
    if isinstance(change, IvrEventRecord):
        return ("ivr", change.uuid)
    return ("session", change.tournament_day_uuid, change.session_type, change.session_number)


def _field_names(table: Table) -> tuple[str, ...]:
    return {"central_matches": _MATCH_FIELDS, "central_ivr_events": _IVR_FIELDS}.get(table.name, _SESSION_FIELDS)


def _approval(row: Any) -> CourtApproval:
    return CourtApproval(
        node_id=row["node_id"], status=row["status"], approved=row["approved"], public_key=row["public_key"],
        court_name=row["court_name"], address=row["address"], approved_at=row["approved_at"],
        approved_by=row["approved_by"], offered_key=row["offered_key"], offered_at=row["offered_at"],
        offered_from=row["offered_from"],
    )


def _create_staging(dbapi_connection: Any, _record: Any) -> None:
    """The session's staging table, once per PostgreSQL connection instead of once per batch."""
    dbapi_connection.execute(str(CreateTable(_STAGING, if_not_exists=True).compile(dialect=postgresql.dialect())))  # type: ignore[no-untyped-call]
    dbapi_connection.commit()


def _sqlite_row(record: EventRecord, now: dt.datetime) -> dict[str, Any]:
    row = {name: getattr(record, name) for name in _RECORD_FIELDS}
    row["master_received_at"] = now
    return row


def _json_dumps_without_nul(value: Any) -> str:
    text = json.dumps(value)
    if "\\u0000" not in text:
        return text
    return json.dumps(_without_nul(value))


def _without_nul(value: Any) -> Any:
    """PostgreSQL text and JSONB reject U+0000; write it the way the slave writes
    undecodable bytes (``\\x00``) so the row, and its whole batch, stays storable."""
    if isinstance(value, str):
        return value.replace("\x00", "\\x00")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value
