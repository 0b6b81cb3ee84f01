"""The audit trail of the director's commands and announcements, in the central database.

:class:`DbAudit` is the :class:`~master.control.Audit` a controller writes to: a row per
command and court when it is issued (who, what, which court, when), completed with that
court's outcome. :func:`read_commands` lists them for ``restrike master audit`` and the console.
Synchronous database work runs in a thread: the audit never waits in a command's way.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, func, insert, select, update

from master.control import ControlResult, IssuedCommand
from master.db.tables import ANNOUNCEMENTS, COMMAND_LOG
from shared.commands import Priority

__all__ = ["AuditRow", "DbAudit", "read_commands"]


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One court's part of one command."""

    command_id: str
    node_id: str
    court_name: str | None
    action: str
    args: dict[str, Any]
    issued_by: str
    issued_at: dt.datetime
    outcome: str | None  # None: no answer recorded (the sender stopped before the deadline)
    reason: str | None
    court_ms: float | None
    round_trip_ms: float | None
    replayed: bool
    announcement_id: int | None


class DbAudit:
    """Writes the audit trail with the central database's engine (one short transaction per write)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    async def async_issued(self, command: IssuedCommand) -> None:
        rows = [
            {"command_id": command.command_id, "node_id": node_id, "court_name": court, "action": command.action.value,
             "args": command.args, "issued_by": command.issued_by, "issued_at": command.issued_at,
             "deadline_at": command.deadline_at, "announcement_id": command.announcement_id}
            for node_id, court in command.courts
        ]
        if rows:
            await asyncio.to_thread(self._run, insert(COMMAND_LOG), rows)

    async def async_finished(self, result: ControlResult) -> None:
        now = dt.datetime.now(dt.UTC)
        for court in result.results:
            statement = (
                update(COMMAND_LOG)
                .where(COMMAND_LOG.c.command_id == result.command_id, COMMAND_LOG.c.node_id == court.node_id)
                .values(outcome=court.outcome, reason=court.reason, court_ms=court.court_ms,
                        round_trip_ms=court.round_trip_ms, replayed=court.replayed, finished_at=now)
            )
            await asyncio.to_thread(self._run, statement)

    async def async_announcement(
        self, text: str, kind: str, priority: Priority, node_ids: Sequence[str], issued_by: str
    ) -> int:
        statement = insert(ANNOUNCEMENTS).values(
            kind=kind, targets=list(node_ids), message=text, priority=priority.value, status="sending", issued_by=issued_by,
        ).returning(ANNOUNCEMENTS.c.id)

        def run() -> int:
            with self.engine.begin() as connection:
                return int(connection.execute(statement).scalar_one())

        return await asyncio.to_thread(run)

    async def async_announcement_done(self, announcement_id: int, result: ControlResult) -> None:
        delivered = result.count("done")
        status = "delivered" if delivered == len(result.results) else "partial" if delivered else "failed"
        statement = update(ANNOUNCEMENTS).where(ANNOUNCEMENTS.c.id == announcement_id).values(
            status=status, delivered=delivered, sent_at=dt.datetime.now(dt.UTC),
        )
        await asyncio.to_thread(self._run, statement)

    def _run(self, statement: Any, rows: list[dict[str, Any]] | None = None) -> None:
        with self.engine.begin() as connection:
            if rows is None:
                connection.execute(statement)
            else:
                connection.execute(statement, rows)


def read_commands(
    engine: Engine, *, limit: int = 50, node_ids: Sequence[str] = (), action: str | None = None,
    offset: int = 0, whole_commands: bool = False,
) -> list[AuditRow]:
    """The latest commands' rows, newest first (a command to several courts is several rows).

    ``limit`` and ``offset`` count rows, or with ``whole_commands`` commands: the console pages
    through commands and never splits one across two pages.
    """
    c = COMMAND_LOG.c
    statement = select(
        c.command_id, c.node_id, c.court_name, c.action, c.args, c.issued_by, c.issued_at, c.outcome, c.reason,
        c.court_ms, c.round_trip_ms, c.replayed, c.announcement_id,
    ).order_by(COMMAND_LOG.c.issued_at.desc(), COMMAND_LOG.c.command_id, COMMAND_LOG.c.id)
    filters: list[ColumnElement[bool]] = []
    if node_ids:
        filters.append(COMMAND_LOG.c.node_id.in_(node_ids))
    if action is not None:
        filters.append(COMMAND_LOG.c.action == action)
    statement = statement.where(*filters)
    if whole_commands:
        newest = func.max(COMMAND_LOG.c.issued_at)
        page = (select(COMMAND_LOG.c.command_id).where(*filters).group_by(COMMAND_LOG.c.command_id)
                .order_by(newest.desc(), COMMAND_LOG.c.command_id).limit(limit).offset(offset))
        statement = statement.where(COMMAND_LOG.c.command_id.in_(page.scalar_subquery()))
    else:
        statement = statement.limit(limit).offset(offset)
    with engine.connect() as connection:
        rows = connection.execute(statement).all()
    return [AuditRow(**row._asdict()) for row in rows]
