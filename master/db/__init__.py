"""The master's central database: schema, migrations and the store the subscriber writes to."""

from master.db.errors import CentralStoreError, CentralStoreUnavailable
from master.db.migrate import current_revision, head_revision, upgrade
from master.db.models import (
    Base,
    CentralChangeCursor,
    CentralIvrEvent,
    CentralMatch,
    CentralObsSession,
    CentralPssEvent,
    CentralSlaveNode,
    CentralTournament,
    CentralTournamentDay,
)
from master.db.store import CentralStore, default_sqlite_url

__all__ = [
    "Base",
    "CentralChangeCursor",
    "CentralIvrEvent",
    "CentralMatch",
    "CentralObsSession",
    "CentralPssEvent",
    "CentralSlaveNode",
    "CentralStore",
    "CentralStoreError",
    "CentralStoreUnavailable",
    "CentralTournament",
    "CentralTournamentDay",
    "current_revision",
    "default_sqlite_url",
    "head_revision",
    "upgrade",
]
