"""The central tables as SQLAlchemy Core sees them, for the queries that bypass the ORM
(bulk upserts, paged reads): one handle per table, shared by every module that writes or reads it."""

from __future__ import annotations

from sqlalchemy import Table

from master.db.models import (
    Base,
    CentralAnnouncement,
    CentralChangeCursor,
    CentralCommandLog,
    CentralIvrEvent,
    CentralIvrReview,
    CentralMatch,
    CentralObsSession,
    CentralPssEvent,
    CentralSlaveNode,
    CentralTournament,
    CentralTournamentDay,
    ConsoleSession,
    ConsoleUser,
)

__all__ = [
    "ANNOUNCEMENTS", "CHANGE_CURSORS", "COMMAND_LOG", "CONSOLE_SESSIONS", "CONSOLE_USERS", "DAYS", "EVENTS",
    "IVR_EVENTS", "IVR_REVIEWS", "MATCHES", "NODES", "OBS_SESSIONS", "TOURNAMENTS",
]


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)  # declarative models map one table each
    return table


EVENTS = _table(CentralPssEvent)
NODES = _table(CentralSlaveNode)
TOURNAMENTS = _table(CentralTournament)
DAYS = _table(CentralTournamentDay)
MATCHES = _table(CentralMatch)
OBS_SESSIONS = _table(CentralObsSession)
IVR_EVENTS = _table(CentralIvrEvent)
IVR_REVIEWS = _table(CentralIvrReview)
CHANGE_CURSORS = _table(CentralChangeCursor)
COMMAND_LOG = _table(CentralCommandLog)
ANNOUNCEMENTS = _table(CentralAnnouncement)
CONSOLE_USERS = _table(ConsoleUser)
CONSOLE_SESSIONS = _table(ConsoleSession)
