"""Central-database fixtures: a fresh PostgreSQL database per test, or a SQLite file."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from master.db.migrate import upgrade
from master.db.store import CentralStore

#: A maintenance database on the test server; each test gets its own database beside it.
ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(params=["postgresql", "sqlite"])
def central_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty central database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('central') / 'central.sqlite3'}"
    else:
        yield from _fresh_postgresql_database()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """An empty PostgreSQL database, for behaviour only a server has (killed connections)."""
    yield from _fresh_postgresql_database()


@pytest.fixture
def admin_engine() -> Iterator[Engine]:
    """Autocommit connection to the server's maintenance database."""
    engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def store(central_url: str) -> Iterator[CentralStore]:
    """A migrated central store on each backend."""
    upgrade(central_url)
    with CentralStore(central_url) as central:
        yield central


def _fresh_postgresql_database() -> Iterator[str]:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"restrike_test_{uuid.uuid4().hex}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL not reachable at {make_url(ADMIN_URL)!r}: {exc.orig}. "
            "Start it (scripts/services) or set TEST_DATABASE_URL; the suite runs on real PostgreSQL by design."
        )
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
