"""Where a query looks, in an operator's terms (tournament, day, court) resolved to the database's keys.

The event list and the match list take the same words; an unknown or ambiguous one is a
:class:`LookupError` that says what is known, so a CLI or a page can show it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from master.db.repository import CentralRepository, NodeRow, TournamentRow

__all__ = ["Scope", "court_node_ids", "resolve_scope"]


@dataclass(frozen=True, slots=True)
class Scope:
    """The keys a query filters on; empty / None: everywhere."""

    node_ids: tuple[str, ...] = ()
    tournament_uuid: str | None = None
    day_uuid: str | None = None


def resolve_scope(
    repository: CentralRepository,
    nodes: list[NodeRow],
    *,
    tournament: str | None = None,
    day: str | None = None,
    court: str | None = None,
) -> Scope:
    """``tournament``: name or UUID; ``day``: UUID, ``TOURNAMENT:N`` or ``N`` (of ``tournament``, or of
    the only tournament known); ``court``: node id or court name (a swapped laptop is a second node)."""
    found = _tournament(repository, tournament) if tournament else None
    return Scope(
        node_ids=court_node_ids(court, nodes) if court else (),
        tournament_uuid=found.uuid if found else None,
        day_uuid=_day(repository, day, found) if day else None,
    )


def _tournament(repository: CentralRepository, name_or_uuid: str) -> TournamentRow:
    known = repository.tournaments()
    found = [t for t in known if t.uuid == name_or_uuid] or [
        t for t in known if t.name.casefold() == name_or_uuid.casefold()
    ]
    if len(found) == 1:
        return found[0]
    if found:
        raise LookupError(
            f"{len(found)} tournaments are called {name_or_uuid!r}: give the UUID ({', '.join(t.uuid for t in found)})"
        )
    names = ", ".join(repr(t.name) for t in known) or "none yet"
    raise LookupError(f"no tournament {name_or_uuid!r} at the master (known: {names})")


def _day(repository: CentralRepository, text: str, tournament: TournamentRow | None) -> str:
    days = repository.days()
    if any(day.uuid == text for day in days):
        return text
    name, _, number_text = text.rpartition(":")
    if not number_text.isdigit():
        raise LookupError(f"no day {text!r}: give a day UUID, TOURNAMENT:N or N")
    if name:
        tournament = _tournament(repository, name)
    elif tournament is None:
        known = repository.tournaments()
        if len(known) != 1:
            raise LookupError(
                f"day {text} of which tournament? The master knows {len(known)}: give --tournament or TOURNAMENT:N"
            )
        tournament = known[0]
    number = int(number_text)
    for day in days:
        if day.tournament_uuid == tournament.uuid and day.day_number == number:
            return day.uuid
    raise LookupError(f"{tournament.name!r} has no day {number} at the master")


def court_node_ids(court: str, nodes: list[NodeRow]) -> tuple[str, ...]:
    """The node ids of ``court`` (a node id, or a court name in any case: a swapped laptop is a
    second node); :class:`LookupError` naming the known courts when there is none."""
    found = tuple(n.node_id for n in nodes if n.node_id == court) or tuple(
        n.node_id for n in nodes if (n.court_name or "").casefold() == court.casefold()
    )
    if not found:
        names = ", ".join(sorted({n.court_name or n.node_id for n in nodes})) or "none yet"
        raise LookupError(f"no court {court!r} at the master (known: {names})")
    return found
