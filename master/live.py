"""Every court's current match in memory, folded from the events the links receive.

A reader (the console, the overlay) gets the score without a database query, and is told
when it changes. It is the Clone pattern again, for the match: a heartbeat's
:class:`~shared.match_snapshot.MatchSnapshot` is the court's state at seq S; the events
after S fold on top, in seq order, with the same :class:`~shared.match_state.MatchState`
code the court uses. A court whose events arrive out of order (a PUB drop, a catch-up)
parks them until the missing one arrives or the next heartbeat's snapshot takes over, so
the state converges within a heartbeat whatever was lost. Nothing here waits on the
database: the overlay keeps its score while PostgreSQL is down.

Everything runs on the master's event loop, inside the receive path: folding an event is
a dictionary look-up and an in-place update; snapshots are built only when read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from runtime.logs import level_for_repeat
from shared.match_snapshot import MatchSnapshot
from shared.match_state import MatchState
from shared.records import EventRecord
from shared.wire import Heartbeat

__all__ = ["CourtMatch", "LiveMatches", "MatchListener", "Unsubscribe"]

logger = logging.getLogger(__name__)

#: Out-of-order events kept per court while waiting for the missing one; past it the next heartbeat resyncs.
PENDING_LIMIT = 5000
#: What a handler may raise on fields it does not expect (a record from another software version).
_FOLD_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError)

MatchListener = Callable[["CourtMatch"], None]
Unsubscribe = Callable[[], None]


@dataclass(eq=False)
class CourtMatch:
    """One court's match as the master folds it; read :meth:`snapshot`, wait with :meth:`async_changed`."""

    node_id: str
    court: str | None = None
    epoch: str | None = None
    #: Every event of :attr:`epoch` up to this seq is folded in.
    seq: int = 0
    #: Bumped at every change; a reader compares it to what it last showed.
    version: int = 0
    state: MatchState = field(default_factory=MatchState)
    fold_errors: int = 0
    _pending: dict[tuple[str, int], EventRecord] = field(default_factory=dict, repr=False)
    _suspect: bool = field(default=False, repr=False)  # a fold failed: the next snapshot replaces the state
    _snapshot: MatchSnapshot | None = field(default=None, repr=False)
    _waiter: asyncio.Event | None = field(default=None, repr=False)

    def snapshot(self) -> MatchSnapshot:
        """The current match (built once per change, then shared by every reader)."""
        if self._snapshot is None:
            self._snapshot = MatchSnapshot.of(self.state, self.seq)
        return self._snapshot

    async def async_changed(self, seen_version: int) -> int:
        """Wait until :attr:`version` is past ``seen_version``; returns the new version. On the loop only."""
        while self.version <= seen_version:
            if self._waiter is None:
                self._waiter = asyncio.Event()
            await self._waiter.wait()
        return self.version

    # --- fed by LiveMatches ---------------------------------------------------------------

    def _feed(self, records: Iterable[EventRecord]) -> bool:
        changed = False
        for record in records:
            if record.epoch != self.epoch:
                if record.seq != 1:
                    self._park(record)
                    continue
                # A new database starts from nothing: its first event needs no snapshot.
                self._reset(record.epoch, MatchState(), 0)
                changed = True
            if record.seq <= self.seq:
                continue
            if record.seq > self.seq + 1:
                self._park(record)
                continue
            changed |= self._fold(record)
        if self._pending:
            changed |= self._drain()
        return changed

    def _adopt(self, epoch: str, snapshot: MatchSnapshot) -> bool:
        """Take the court's own state when it is ahead of ours (or ours is in doubt)."""
        if epoch == self.epoch and snapshot.seq <= self.seq and not (self._suspect and snapshot.seq == self.seq):
            return False
        self._reset(epoch, snapshot.to_state(), snapshot.seq)
        self._drain()
        return True

    def _reset(self, epoch: str, state: MatchState, seq: int) -> None:
        self.epoch, self.state, self.seq, self._suspect = epoch, state, seq, False
        self._pending = {key: r for key, r in self._pending.items() if key[0] == epoch and key[1] > seq}

    def _fold(self, record: EventRecord) -> bool:
        self.seq = record.seq
        if not record.valid:
            return False
        # An answer to the court's pull request is the sender's last packet of a kind, read as such.
        fold = self.state.fold_answer_fields if record.resync else self.state.fold_fields
        try:
            return fold(record.code, record.parsed)
        except _FOLD_ERRORS as exc:
            self.fold_errors += 1
            self._suspect = True
            logger.log(
                level_for_repeat(self.fold_errors),
                "Court %s: event %d (%s) does not fit the match state (%s: %s); the next heartbeat resyncs it",
                self.court or self.node_id, record.seq, record.code, type(exc).__name__, exc,
            )
            return True

    def _park(self, record: EventRecord) -> None:
        if len(self._pending) >= PENDING_LIMIT:
            self._pending.clear()  # too far behind: the next heartbeat's snapshot takes over
        self._pending[(record.epoch, record.seq)] = record

    def _drain(self) -> bool:
        changed = False
        while (record := self._pending.pop((self.epoch or "", self.seq + 1), None)) is not None:
            changed |= self._fold(record)
        return changed

    def _changed(self) -> None:
        self.version += 1
        self._snapshot = None
        if self._waiter is not None:
            self._waiter.set()
            self._waiter = None


class LiveMatches:
    """The current match of every court the master links to, by node id.

    Listeners are called on the event loop right after a court's match changed (once per
    received message or catch-up page, not per event). They run inside the receive path:
    keep them short (set a value, schedule a task); one that raises is logged and skipped.
    """

    def __init__(self) -> None:
        self._courts: dict[str, CourtMatch] = {}
        self._listeners: dict[str | None, list[MatchListener]] = {}
        self._listener_errors = 0

    def get(self, node_id: str) -> CourtMatch | None:
        return self._courts.get(node_id)

    def courts(self) -> list[CourtMatch]:
        """Every court seen since the master started, by node id."""
        return [self._courts[node_id] for node_id in sorted(self._courts)]

    def subscribe(self, listener: MatchListener, node_id: str | None = None) -> Unsubscribe:
        """Call ``listener`` whenever a court's match changes (one court, or all when ``node_id`` is None).

        Returns the function that ends the subscription (a page calls it when its client leaves).
        """
        self._listeners.setdefault(node_id, []).append(listener)

        def unsubscribe() -> None:
            listeners = self._listeners.get(node_id, [])
            if listener in listeners:
                listeners.remove(listener)

        return unsubscribe

    def on_heartbeat(self, heartbeat: Heartbeat) -> None:
        """A court's heartbeat: its name, and its snapshot when that is ahead of what was folded.

        Its first heartbeat (or a new name) is a change too: a court's events can be folded before
        it is first heard, and readers show a court only once they know its name.
        """
        court = self._court(heartbeat.node_id)
        named = court.court != heartbeat.court
        court.court = heartbeat.court
        adopted = heartbeat.match is not None and court._adopt(heartbeat.epoch, heartbeat.match)
        if named or adopted:
            self._notify(court)

    def on_records(self, node_id: str, records: Iterable[EventRecord]) -> None:
        """Events of one court as received (live, held or from a catch-up page), in any order."""
        court = self._court(node_id)
        if court._feed(records):
            self._notify(court)

    def _court(self, node_id: str) -> CourtMatch:
        court = self._courts.get(node_id)
        if court is None:
            court = self._courts[node_id] = CourtMatch(node_id)
        return court

    def _notify(self, court: CourtMatch) -> None:
        court._changed()
        for listener in (*self._listeners.get(court.node_id, ()), *self._listeners.get(None, ())):
            try:
                listener(court)
            except Exception:  # a page's bug must not stop the court's events
                self._listener_errors += 1
                logger.log(
                    level_for_repeat(self._listener_errors), "A match listener failed on court %s (skipped)",
                    court.court or court.node_id, exc_info=True,
                )
