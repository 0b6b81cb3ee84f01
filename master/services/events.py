"""The central event query: every court's events by tournament, day, court, match, category,
time and text, a page at a time, newest or oldest first, and how many there are.

`restrike master events` and the console's event table both read this. A query speaks the
operator's terms (a court name, "day 2", a tournament name); they are resolved here to the
database's keys, and an unknown name is a :class:`LookupError` that says what is known.
Synchronous (the database is): code on the event loop calls it in a thread.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from master.db.repository import CentralRepository, EventFilter, NodeRow, SessionSpan
from master.services._paging import InvalidCursor, Keyset
from master.services._scope import Scope, resolve_scope
from shared.pss import Category
from shared.pss.kinds import EventKind
from shared.records import EventRecord

__all__ = ["CentralEvent", "EventPage", "EventQuery", "EventService", "InvalidCursor"]

MAX_PAGE = 10_000
_PAGES = Keyset("events", "events", MAX_PAGE)


class EventQuery(BaseModel):
    """Which events, in an operator's terms; every part optional, all combined."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tournament: str | None = Field(None, description="Tournament name or UUID")
    day: str | None = Field(None, description="Day UUID, TOURNAMENT:N, or N of the tournament given (or the only one)")
    court: str | None = Field(None, description="Court name or node id")
    match_number: str | None = None
    categories: tuple[Category, ...] = ()
    kinds: tuple[EventKind, ...] = ()
    since: dt.datetime | None = Field(None, description="From this time (naive = UTC), by the court's receive time")
    until: dt.datetime | None = Field(None, description="Up to this time, inclusive")
    text: str | None = Field(None, description="Case-insensitive part of the protocol line")
    session: str | None = Field(
        None, pattern=r"^(stream|recording|replay_buffer):[1-9][0-9]*$",
        description="TYPE:N, an OBS session of the court and day given (e.g. stream:2)",
    )
    newest_first: bool = True


class CentralEvent(BaseModel):
    """One stored event, with the court's name as the master knows it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    court: str | None
    record: EventRecord
    stored_at: dt.datetime = Field(description="When the master stored it")


class EventPage(BaseModel):
    """One page; ``next_cursor`` asks for the page after it, ``None`` on the last page."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    events: list[CentralEvent]
    next_cursor: str | None = None


class EventService:
    """Queries over every court's stored events."""

    def __init__(self, repository: CentralRepository) -> None:
        self.repository = repository

    def page(self, query: EventQuery, *, limit: int = 100, cursor: str | None = None) -> EventPage:
        """Up to ``limit`` events after ``cursor`` (from the start without one).

        Raises :class:`LookupError` for a tournament, day or court the master does not know,
        :class:`InvalidCursor` for a cursor this query did not produce.
        """
        after = _PAGES.start(limit, cursor, query.newest_first)
        nodes = self.repository.nodes()
        flt = self._filter(query, nodes)
        rows = self.repository.events(flt, limit=limit + 1, newest_first=query.newest_first, after=after)
        names = {node.node_id: node.court_name for node in nodes}
        shown, next_cursor = _PAGES.split(rows, limit, query.newest_first)
        events = [CentralEvent(court=names.get(row.record.node_id), record=row.record, stored_at=row.stored_at)
                  for row in shown]
        return EventPage(events=events, next_cursor=next_cursor)

    def count(self, query: EventQuery) -> int:
        """How many events the query selects (all pages together)."""
        return self.repository.count_events(self._filter(query, self.repository.nodes()))

    def _filter(self, query: EventQuery, nodes: list[NodeRow]) -> EventFilter:
        scope = resolve_scope(self.repository, nodes, tournament=query.tournament, day=query.day, court=query.court)
        return EventFilter(
            sessions=self._sessions(query.session, scope) if query.session else (),
            node_ids=scope.node_ids,
            tournament_uuid=scope.tournament_uuid,
            day_uuid=scope.day_uuid,
            match_number=query.match_number,
            categories=tuple(c.value for c in query.categories),
            kinds=query.kinds,
            since_ms=_ms(query.since) if query.since else None,
            until_ms=_ms(query.until) if query.until else None,
            text=query.text or None,
        )


    def _sessions(self, session: str, scope: Scope) -> tuple[SessionSpan, ...]:
        """The time range of ``TYPE:N`` on the court and day of the query (a swapped laptop may have one too)."""
        if not scope.node_ids or scope.day_uuid is None:
            raise LookupError(f"session {session} of which court and day? Give the court and the day too")
        session_type, number = session.split(":")
        spans = self.repository.session_spans(scope.node_ids, scope.day_uuid, session_type, int(number))
        if not spans:
            raise LookupError(f"no {session_type} session {number} on that court and day at the master")
        return tuple(spans)


def _ms(moment: dt.datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)
