"""Bring a central database to the schema this code expects (Alembic, run programmatically).

The scripts are found next to this package, so this works from an installed wheel
without an ``alembic.ini`` in the working directory.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from master.db._engine import create_central_engine

__all__ = ["MIGRATIONS_DIR", "current_revision", "head_revision", "upgrade"]

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def upgrade(url: str, revision: str = "head") -> None:
    """Apply every pending migration in one transaction (safe to call at each start-up)."""
    engine = create_central_engine(url, for_migrations=True)
    try:
        with engine.begin() as connection:
            before = MigrationContext.configure(connection).get_current_revision()
            command.upgrade(_config(connection), revision)
            after = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    if before is None:
        logger.info("Central database created at revision %s", after)
    elif before != after:
        logger.info("Central database migrated from revision %s to %s", before, after)
    else:
        logger.info("Central database at revision %s (up to date)", after)


def current_revision(url: str) -> str | None:
    """The revision the database is at; ``None`` when it has never been migrated."""
    engine = create_central_engine(url, for_migrations=True)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    """The revision this code expects, to compare with :func:`current_revision`."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    # ConfigParser interpolates %, which a folder name may contain.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config
