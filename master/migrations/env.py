"""Alembic environment of the central schema.

Normally driven by :mod:`master.db.migrate`, which hands over an open connection. From a
checkout the CLI works too:
``alembic -c master/alembic.ini -x url=postgresql+psycopg://... upgrade head``
(``--sql`` prints the DDL instead of running it).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from master.db._engine import central_url, create_central_engine
from master.db.models import Base


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the database with: alembic -x url=<sqlalchemy url> ...")
    return url


def _run(connection: Connection) -> None:
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_offline() -> None:
    url = central_url(_url())
    context.configure(
        url=url,
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=url.get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_central_engine(_url(), for_migrations=True)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
