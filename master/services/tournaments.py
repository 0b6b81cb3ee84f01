"""Tournaments and their days across every court: which courts stored events on which day.

A court reports its tournament and day in its heartbeats; the master writes them as it hears
them, so a tournament appears here once a court has worked under it.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict

from master.db.repository import CentralRepository

__all__ = ["CourtDay", "DayView", "TournamentView", "tournaments"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CourtDay(_Frozen):
    """One court's work on one day: events stored, matches loaded."""

    node_id: str
    court: str | None
    events: int
    matches: int


class DayView(_Frozen):
    uuid: str
    number: int
    date: dt.date | None
    courts: list[CourtDay]

    @property
    def events(self) -> int:
        return sum(c.events for c in self.courts)

    @property
    def matches(self) -> int:
        return sum(c.matches for c in self.courts)


class TournamentView(_Frozen):
    uuid: str
    name: str
    location: str | None
    start_date: dt.date | None
    end_date: dt.date | None
    days: list[DayView]


def tournaments(repository: CentralRepository) -> list[TournamentView]:
    """Every tournament the master knows, the latest first, each day with its courts' events and matches."""
    names = {node.node_id: node.court_name for node in repository.nodes()}
    events = {(day, node): count for day, node, count in repository.day_activity() if day is not None}
    matches = {(day, node): count for day, node, count in repository.day_matches() if day is not None}
    activity: dict[str, list[CourtDay]] = {}
    for day_uuid, node_id in sorted(events.keys() | matches.keys()):
        activity.setdefault(day_uuid, []).append(CourtDay(
            node_id=node_id, court=names.get(node_id), events=events.get((day_uuid, node_id), 0),
            matches=matches.get((day_uuid, node_id), 0),
        ))
    days: dict[str, list[DayView]] = {}
    for day in repository.days():
        days.setdefault(day.tournament_uuid, []).append(
            DayView(uuid=day.uuid, number=day.day_number, date=day.date, courts=activity.get(day.uuid, []))
        )
    return [
        TournamentView(uuid=t.uuid, name=t.name, location=t.location, start_date=t.start_date, end_date=t.end_date,
                       days=days.get(t.uuid, []))
        for t in repository.tournaments()
    ]
