"""Engines for the central database: URL normalisation and per-backend settings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

__all__ = ["SUPPORTED_BACKENDS", "central_url", "create_central_engine"]

SUPPORTED_BACKENDS = frozenset({"postgresql", "sqlite"})

#: Fail fast when PostgreSQL is unreachable instead of hanging the writer thread.
_CONNECT_TIMEOUT_S = 5
_SQLITE_BUSY_TIMEOUT_MS = 10_000


def central_url(url: str | URL) -> URL:
    """Parse a URL, giving a bare ``postgresql://`` the psycopg 3 driver we ship with."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise ValueError(f"unsupported central database {backend!r}; use postgresql or sqlite")
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def create_central_engine(url: str | URL, *, for_migrations: bool = False) -> Engine:
    """An engine whose connections survive a database restart (pre-ping) and, on SQLite,
    run in WAL mode with a busy timeout and enforced foreign keys.

    ``for_migrations`` leaves foreign keys off on SQLite: batch migrations copy and
    drop tables, which would otherwise cascade deletes into the rows that point at them.
    """
    parsed = central_url(url)
    options: dict[str, Any] = {"pool_pre_ping": True}
    if for_migrations:
        options["poolclass"] = NullPool
    if parsed.get_backend_name() == "postgresql":
        if "connect_timeout" not in parsed.query:
            options["connect_args"] = {"connect_timeout": _CONNECT_TIMEOUT_S}
        return create_engine(parsed, **options)
    engine = create_engine(parsed, **options)
    event.listen(engine, "connect", _sqlite_pragmas_with_fk if not for_migrations else _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _sqlite_pragmas_with_fk(dbapi_connection: Any, record: Any) -> None:
    _sqlite_pragmas(dbapi_connection, record)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()
