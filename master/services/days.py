"""Tournaments and days the director plans at the master, and what activating one tells the courts.

A tournament made here gets the UUID every court derives from its name, and its day N the
UUID every court derives for day N (:func:`shared.commands.day_uuid_of`), so a day activated
from the console and one activated by name at a court are the same day. Activation itself is
the control command ``activate_day`` (:class:`master.control.Controller`); :func:`activation`
gives its arguments, with both UUIDs spelled out so every court tags the same day.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from master.db.repository import CentralRepository, TournamentRow
from master.db.store import CentralStore
from shared.commands import ActivateDayArgs, day_uuid_of, tournament_uuid_of
from shared.wire import Heartbeat

__all__ = ["NewDay", "NewTournament", "activation", "add_day", "courts_on_days", "create_tournament", "next_day"]


class NewTournament(BaseModel):
    """A tournament as the director enters it."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=255)
    location: str | None = Field(None, max_length=255)
    start_date: dt.date | None = None
    end_date: dt.date | None = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> NewTournament:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError(f"the tournament ends ({self.end_date}) before it starts ({self.start_date})")
        return self


class NewDay(BaseModel):
    """A day of a tournament: its number (1 for the first) and date."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tournament_uuid: str = Field(min_length=1, max_length=64)
    day_number: int = Field(ge=1, le=60)
    date: dt.date


def create_tournament(store: CentralStore, repository: CentralRepository, new: NewTournament) -> str:
    """Write the tournament; its UUID. A name the master knows already is a :class:`ValueError`
    (the courts would take both for one tournament)."""
    known = repository.tournaments()
    if any(t.name.casefold() == new.name.casefold() for t in known):
        raise ValueError(f"a tournament called {new.name!r} exists already")
    tournament_uuid = tournament_uuid_of(new.name)
    store.upsert_tournament(tournament_uuid, new.name, location=new.location or None, start_date=new.start_date,
                            end_date=new.end_date)
    return tournament_uuid


def add_day(store: CentralStore, repository: CentralRepository, new: NewDay) -> str:
    """Write day N of a tournament; its UUID (the one every court derives for day N).

    :class:`LookupError` for an unknown tournament, :class:`ValueError` for a day number taken.
    """
    tournament = _tournament(repository, new.tournament_uuid)
    if any(d.day_number == new.day_number for d in repository.days(tournament.uuid)):
        raise ValueError(f"{tournament.name} has a day {new.day_number} already")
    day_uuid = day_uuid_of(tournament.uuid, new.day_number)
    store.upsert_day(day_uuid, tournament.uuid, new.day_number, new.date)
    return day_uuid


def next_day(start_date: dt.date | None, days: Iterable[tuple[int, dt.date | None]], today: dt.date) -> tuple[int, dt.date]:
    """What the "add a day" form offers, from the tournament's first date and its days' ``(number, date)``:
    the number after the last day, the date after it (or the tournament's start, or today)."""
    known = sorted(days)
    if not known:
        return 1, start_date or today
    number, date = known[-1]
    return number + 1, (date + dt.timedelta(days=1)) if date else today


def activation(repository: CentralRepository, day_uuid: str, today: dt.date) -> ActivateDayArgs:
    """The ``activate_day`` arguments for a day the master knows (a day without a date: ``today``).

    Tournaments and days come from this module or from courts' heartbeats: their ids are UUIDs."""
    day = next((d for d in repository.days() if d.uuid == day_uuid), None)
    if day is None:
        raise LookupError(f"no day {day_uuid} at the master")
    tournament = _tournament(repository, day.tournament_uuid)
    return ActivateDayArgs(
        tournament_name=tournament.name, day_number=day.day_number, date=day.date or today,
        tournament_uuid=uuid.UUID(tournament.uuid), day_uuid=uuid.UUID(day.uuid),
    )


def courts_on_days(heartbeats: Iterable[Heartbeat]) -> dict[str, list[tuple[str, str]]]:
    """Which courts work under which day now: day UUID to ``(court name, node id)``, sorted, from their
    last heartbeats."""
    on: dict[str, list[tuple[str, str]]] = {}
    for hb in heartbeats:
        if hb.tournament_day_uuid:
            on.setdefault(hb.tournament_day_uuid, []).append((hb.court or hb.node_id, hb.node_id))
    return {day: sorted(courts) for day, courts in on.items()}


def _tournament(repository: CentralRepository, tournament_uuid: str) -> TournamentRow:
    found = next((t for t in repository.tournaments() if t.uuid == tournament_uuid), None)
    if found is None:
        raise LookupError(f"no tournament {tournament_uuid} at the master")
    return found
