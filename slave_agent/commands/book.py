"""The court's record of the director's commands: each id runs at most once, even across restarts.

A command is written (committed) before it runs and its outcome after, so a master that
sends the same id again, now or after the agent restarted, gets the recorded outcome and
the action never runs twice. The outcome is written behind the answer (:meth:`CommandBook.finish_soon`):
the director does not wait for that commit, and the dispatcher answers a repeat from memory
until it is in. Should the agent die in that instant, a repeat is answered "interrupted" (never
run again), which is the rule's safe side.

The book has its own connection and thread, with ``synchronous=NORMAL``: a commit is in the
write-ahead log before the command runs, which survives the agent's crash or restart; only
a power cut between a commit and the next checkpoint could forget the last ids (then a
repeat of such a command would run again). The full fsync of ``FULL`` would cost two disk
flushes per command, several milliseconds, on every command's path; events, the court's
source of truth, keep ``[store] synchronous``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from slave_agent.db.store import connect, transaction

__all__ = ["CommandBook", "DirectorMessage", "StoredCommand"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoredCommand:
    command_id: str
    action: str
    received_ms: int
    outcome: str | None  # None: claimed but never finished (the agent stopped while it ran)
    reason: str | None
    duration_ms: float | None
    data: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class DirectorMessage:
    """A message from the director, for the court's local page."""

    id: int
    kind: str
    priority: str
    text: str
    received_ms: int
    announcement_id: int | None


class CommandBook:
    """Commands and director messages in the court's SQLite, on a connection and thread of their own."""

    def __init__(self, db_path: Path):
        self.db_path = db_path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="command-book")
        self._conn: sqlite3.Connection | None = None

    async def async_close(self) -> None:
        await self._async(lambda conn: conn.close())
        self._conn = None
        await asyncio.to_thread(self._executor.shutdown, True)

    async def async_claim(self, command_id: str, action: str, args: dict[str, Any], received_ms: int) -> StoredCommand | None:
        """Record a new command before it runs; the earlier record when the id is known already."""

        def claim(conn: sqlite3.Connection) -> StoredCommand | None:
            earlier = _get(conn, command_id)
            if earlier is not None:
                return earlier
            with transaction(conn):
                conn.execute(
                    "INSERT INTO director_commands (command_id, action, args, received_ms) VALUES (?, ?, ?, ?)",
                    (command_id, action, json.dumps(args, sort_keys=True, default=str), received_ms),
                )
            return None

        return await self._async(claim)

    def finish_soon(
        self, command_id: str, outcome: str, reason: str | None, duration_ms: float, finished_ms: int,
        data: dict[str, Any] | None,
    ) -> asyncio.Future[None]:
        """Queue the outcome's write and return at once (the future ends when it is committed).

        The book's one thread takes work in order, so this write lands before a later claim of
        the same id is read and before :meth:`async_close`.
        """

        def finish(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                conn.execute(
                    "UPDATE director_commands SET outcome = ?, reason = ?, duration_ms = ?, finished_ms = ?, data = ? "
                    "WHERE command_id = ?",
                    (outcome, reason, duration_ms, finished_ms, None if data is None else json.dumps(data), command_id),
                )

        return asyncio.get_running_loop().run_in_executor(self._executor, self._on_thread, finish)

    async def async_get(self, command_id: str) -> StoredCommand | None:
        return await self._async(lambda conn: _get(conn, command_id))

    async def async_add_message(
        self, *, kind: str, priority: str, text: str, received_ms: int, announcement_id: int | None
    ) -> DirectorMessage:
        def add(conn: sqlite3.Connection) -> int:
            with transaction(conn):
                cur = conn.execute(
                    "INSERT INTO director_messages (announcement_id, kind, priority, text, received_ms) VALUES (?, ?, ?, ?, ?)",
                    (announcement_id, kind, priority, text, received_ms),
                )
            return cur.lastrowid or 0

        return DirectorMessage(await self._async(add), kind, priority, text, received_ms, announcement_id)

    async def async_messages(self, limit: int = 20) -> list[DirectorMessage]:
        """The director's latest messages, newest first (the local page shows them)."""

        def read(conn: sqlite3.Connection) -> list[DirectorMessage]:
            rows = conn.execute(
                "SELECT id, kind, priority, text, received_ms, announcement_id FROM director_messages "
                "ORDER BY id DESC LIMIT ?", (limit,),
            ).fetchall()
            return [DirectorMessage(*row) for row in rows]

        return await self._async(read)

    async def _async(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._on_thread, fn)

    def _on_thread(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            self._conn = connect(self.db_path, synchronous="NORMAL")
        return fn(self._conn)


def _get(conn: sqlite3.Connection, command_id: str) -> StoredCommand | None:
    row = conn.execute(
        "SELECT command_id, action, received_ms, outcome, reason, duration_ms, data FROM director_commands "
        "WHERE command_id = ?", (command_id,),
    ).fetchone()
    if row is None:
        return None
    command_id, action, received_ms, outcome, reason, duration_ms, data = row
    return StoredCommand(command_id, action, received_ms, outcome, reason, duration_ms,
                         None if data is None else json.loads(data))
