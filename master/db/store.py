"""The master's central store: exactly-once storage of every court's events, plus node,
tournament and OBS-session bookkeeping.

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
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import Column, Connection, Engine, MetaData, Table, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.schema import CreateTable

from master.db._engine import create_central_engine
from master.db.errors import CentralStoreError, CentralStoreUnavailable
from master.db.models import (
    CentralObsSession,
    CentralPssEvent,
    CentralSlaveNode,
    CentralTournament,
    CentralTournamentDay,
)
from shared.records import EventRecord

__all__ = ["SQLITE_FILE_NAME", "CentralStore", "default_sqlite_url"]

logger = logging.getLogger(__name__)

SQLITE_FILE_NAME = "central.sqlite3"

_EVENTS: Table = CentralPssEvent.__table__  # type: ignore[assignment]
_NODES: Table = CentralSlaveNode.__table__  # type: ignore[assignment]
_TOURNAMENTS: Table = CentralTournament.__table__  # type: ignore[assignment]
_DAYS: Table = CentralTournamentDay.__table__  # type: ignore[assignment]
_SESSIONS: Table = CentralObsSession.__table__  # type: ignore[assignment]

_EVENT_KEY = [_EVENTS.c.node_id, _EVENTS.c.epoch, _EVENTS.c.seq]
_RECORD_FIELDS = tuple(EventRecord.model_fields)
_RECORD_COLUMNS = [_EVENTS.c[name] for name in _RECORD_FIELDS]
_INSERTED_COLUMNS = [*_RECORD_COLUMNS, _EVENTS.c.master_received_at]

_SQLITE_INSERT = (
    sqlite.insert(_EVENTS).on_conflict_do_nothing(index_elements=_EVENT_KEY).returning(_EVENTS.c.node_id)
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
    re.sub(r"\(.*\)", "", column.type.compile(dialect=postgresql.dialect())).lower()
    for column in _STAGING.c
]
_COPY_SQL = f"COPY {_STAGING.name} ({', '.join(_STAGING.c.keys())}) FROM STDIN (FORMAT BINARY)"
_PG_INSERT_FROM_STAGING = (
    postgresql.insert(_EVENTS)
    .from_select(_INSERTED_COLUMNS, select(_STAGING))
    .on_conflict_do_nothing(index_elements=_EVENT_KEY)
    .returning(_EVENTS.c.node_id)
)
_NODE_FIELDS = frozenset(_NODES.c.keys()) - {"id", "node_id"}
_SESSION_KEY = [
    _SESSIONS.c.node_id,
    _SESSIONS.c.tournament_day_uuid,
    _SESSIONS.c.session_type,
    _SESSIONS.c.session_number,
]


def default_sqlite_url(data_dir: Path) -> str:
    """The zero-set-up central database inside ``data_dir`` (created if missing)."""
    data_dir.mkdir(parents=True, exist_ok=True)
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
        self._available = True
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
        if not records:
            return 0
        now = dt.datetime.now(dt.UTC)
        received = Counter(record.node_id for record in records)
        with self._begin() as connection:
            if self._postgresql:
                stored = Counter(self._copy_insert(connection, records, now))
            else:
                rows = [_sqlite_row(record, now) for record in records]
                stored = Counter(connection.execute(_SQLITE_INSERT, rows).scalars())
            self._backfill_match_numbers(connection, records)
            for node_id in sorted(received):  # one lock order, so concurrent batches cannot deadlock
                connection.execute(
                    update(_NODES)
                    .where(_NODES.c.node_id == node_id)
                    .values(
                        events_received=_NODES.c.events_received + received[node_id],
                        events_stored=_NODES.c.events_stored + stored[node_id],
                    )
                )
        return stored.total()

    def _backfill_match_numbers(self, connection: Connection, records: Sequence[EventRecord]) -> None:
        """The slave's rule, mirrored: ``mch`` names a match, and its earlier rows learn the number.

        A court publishes ``pre`` and the athletes before ``mch`` arrives, so those rows reach
        the master without a number; this keeps the two databases alike.
        """
        named = {(r.match_uuid, r.match_number) for r in records if r.code == "mch" and r.match_uuid and r.match_number}
        for match_uuid, number in sorted(named):
            connection.execute(
                update(_EVENTS)
                .where(_EVENTS.c.match_uuid == match_uuid, _EVENTS.c.match_number.is_(None))
                .values(match_number=number)
            )

    def last_stored(self, node_id: str) -> dict[str, int]:
        """Highest stored ``seq`` per epoch of a node: where its catch-up resumes."""
        statement = (
            select(_EVENTS.c.epoch, func.max(_EVENTS.c.seq))
            .where(_EVENTS.c.node_id == node_id)
            .group_by(_EVENTS.c.epoch)
        )
        with self._begin() as connection:
            return {epoch: seq for epoch, seq in connection.execute(statement)}

    def last_seq(self, node_id: str, epoch: str) -> int:
        """Highest stored ``seq`` of one epoch of a node, 0 when nothing is stored."""
        statement = select(func.coalesce(func.max(_EVENTS.c.seq), 0)).where(
            _EVENTS.c.node_id == node_id, _EVENTS.c.epoch == epoch
        )
        with self._begin() as connection:
            return int(connection.execute(statement).scalar_one())

    def count_events(self, node_id: str | None = None) -> int:
        """Stored events, of one node or of all."""
        statement = select(func.count()).select_from(_EVENTS)
        if node_id is not None:
            statement = statement.where(_EVENTS.c.node_id == node_id)
        with self._begin() as connection:
            return int(connection.execute(statement).scalar_one())

    def fetch_events(self, node_id: str, epoch: str) -> list[EventRecord]:
        """One epoch of a node as the slave stored it, in ``seq`` order."""
        statement = (
            select(*_RECORD_COLUMNS)
            .where(_EVENTS.c.node_id == node_id, _EVENTS.c.epoch == epoch)
            .order_by(_EVENTS.c.seq)
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
        statement = self._insert(_NODES).values(node_id=node_id, **fields)
        if fields:
            statement = statement.on_conflict_do_update(index_elements=[_NODES.c.node_id], set_=fields)
        else:
            statement = statement.on_conflict_do_nothing(index_elements=[_NODES.c.node_id])
        with self._begin() as connection:
            connection.execute(statement)

    def mark_offline(self, node_id: str) -> None:
        """Flag a node offline (missed heartbeats); unknown nodes are ignored."""
        statement = update(_NODES).where(_NODES.c.node_id == node_id).values(status="offline")
        with self._begin() as connection:
            connection.execute(statement)

    def list_nodes(self) -> list[dict[str, Any]]:
        """Every known node with all its columns, by ``node_id``."""
        with self._begin() as connection:
            rows = connection.execute(select(_NODES).order_by(_NODES.c.node_id)).mappings().all()
        return [dict(row) for row in rows]

    # --- tournaments and OBS sessions ---------------------------------------------------

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
            self._insert(_TOURNAMENTS)
            .values(uuid=uuid, **values)
            .on_conflict_do_update(
                index_elements=[_TOURNAMENTS.c.uuid], set_={**values, "updated_at": func.now()}
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
            self._insert(_DAYS)
            .values(uuid=uuid, **values)
            .on_conflict_do_update(index_elements=[_DAYS.c.uuid], set_=values)
        )
        with self._begin() as connection:
            connection.execute(statement)

    def upsert_obs_session(
        self,
        node_id: str,
        tournament_day_uuid: str,
        session_type: str,
        session_number: int,
        *,
        start_ms: int,
        end_ms: int | None = None,
        is_active: bool = True,
        interruption_reason: str | None = None,
        time_offset_seconds: float = 0.0,
        cumulative_offset_seconds: float = 0.0,
    ) -> None:
        """Create or replace a court's OBS session as the slave reports it."""
        values = {
            "start_ms": start_ms,
            "end_ms": end_ms,
            "is_active": is_active,
            "interruption_reason": interruption_reason,
            "time_offset_seconds": time_offset_seconds,
            "cumulative_offset_seconds": cumulative_offset_seconds,
        }
        statement = (
            self._insert(_SESSIONS)
            .values(
                node_id=node_id,
                tournament_day_uuid=tournament_day_uuid,
                session_type=session_type,
                session_number=session_number,
                **values,
            )
            .on_conflict_do_update(index_elements=_SESSION_KEY, set_=values)
        )
        with self._begin() as connection:
            connection.execute(statement)

    # --- helpers ----------------------------------------------------------------------

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A transaction whose driver errors come out as :class:`CentralStoreError`s."""
        try:
            with self._engine.begin() as connection:
                yield connection
        except (OperationalError, PoolTimeoutError) as exc:
            raise self._unavailable(exc) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise self._unavailable(exc) from exc
            raise CentralStoreError(f"central database refused the operation: {exc.orig}") from exc
        # The COPY path talks to psycopg directly, so its errors arrive unwrapped.
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise self._unavailable(exc) from exc
        except psycopg.Error as exc:
            raise CentralStoreError(f"central database refused the operation: {exc}") from exc
        if not self._available:
            self._available = True
            logger.info("central database reachable again")

    def _unavailable(self, exc: Exception) -> CentralStoreUnavailable:
        reason = str(getattr(exc, "orig", None) or exc).strip()
        if self._available:
            self._available = False
            logger.warning("central database unavailable: %s", reason)
        else:
            logger.debug("central database still unavailable: %s", reason)
        return CentralStoreUnavailable(f"central database unavailable: {reason}")

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


def _create_staging(dbapi_connection: Any, _record: Any) -> None:
    """The session's staging table, once per PostgreSQL connection instead of once per batch."""
    dbapi_connection.execute(str(CreateTable(_STAGING, if_not_exists=True).compile(dialect=postgresql.dialect())))
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
