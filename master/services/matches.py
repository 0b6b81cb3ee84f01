"""Every court's matches as the courts' databases hold them (``central_matches``, kept current by
the row changes the courts publish): number, athletes, division, result, when loaded and finished.

Filters in the operator's terms like the event list (tournament, day, court, match number) plus
the match status; keyset pages newest or oldest first by load time. Synchronous: code on the
event loop calls it in a thread. For the match being fought *now*, read the court's live match
(``Master.matches`` / ``CourtView.match``): a row here follows its court by a change message.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from master.db.repository import CentralRepository, MatchFilter, MatchRow
from master.services._paging import InvalidCursor, Keyset
from master.services._scope import resolve_scope
from shared.match_snapshot import Tally
from shared.match_state import MatchStatus

__all__ = ["InvalidCursor", "MatchPage", "MatchQuery", "MatchService", "MatchSide", "MatchView"]

MAX_PAGE = 5_000
_PAGES = Keyset("matches", "matches", MAX_PAGE)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MatchQuery(_Frozen):
    """Which matches, in an operator's terms; every part optional, all combined."""

    tournament: str | None = Field(None, description="Tournament name or UUID")
    day: str | None = Field(None, description="Day UUID, TOURNAMENT:N, or N of the tournament given (or the only one)")
    court: str | None = Field(None, description="Court name or node id")
    match_number: str | None = None
    statuses: tuple[MatchStatus, ...] = ()
    newest_first: bool = True


class MatchSide(_Frozen):
    name: str | None
    noc: str | None


class MatchView(_Frozen):
    """One match of one court."""

    uuid: str
    node_id: str
    court: str | None
    tournament_uuid: str | None
    day_uuid: str | None
    number: str | None
    phase: str | None
    weight_class: str | None
    division: str | None
    blue: MatchSide
    red: MatchSide
    status: str = Field(description="As the court last stored it (a MatchStatus value)")
    winner: str | None = Field(description="blue, red or tie")
    decision: str | None
    rounds: Tally | None = Field(description="Rounds won, when the court has counted them")
    loaded_at: dt.datetime
    ready_at: dt.datetime | None
    finished_at: dt.datetime | None


class MatchPage(_Frozen):
    """One page; ``next_cursor`` asks for the page after it, ``None`` on the last page."""

    matches: list[MatchView]
    next_cursor: str | None = None


class MatchService:
    """Queries over every court's matches."""

    def __init__(self, repository: CentralRepository) -> None:
        self.repository = repository

    def page(self, query: MatchQuery, *, limit: int = 100, cursor: str | None = None) -> MatchPage:
        """Up to ``limit`` matches after ``cursor``; :class:`LookupError` for an unknown tournament,
        day or court, :class:`InvalidCursor` for a cursor this list did not hand out."""
        after = _PAGES.start(limit, cursor, query.newest_first)
        nodes = self.repository.nodes()
        scope = resolve_scope(self.repository, nodes, tournament=query.tournament, day=query.day, court=query.court)
        flt = MatchFilter(
            node_ids=scope.node_ids, tournament_uuid=scope.tournament_uuid, day_uuid=scope.day_uuid,
            match_number=query.match_number, statuses=tuple(s.value for s in query.statuses),
        )
        rows = self.repository.matches(flt, limit=limit + 1, newest_first=query.newest_first, after=after)
        names = {node.node_id: node.court_name for node in nodes}
        shown, next_cursor = _PAGES.split(rows, limit, query.newest_first)
        return MatchPage(matches=[_view(row, names.get(row.node_id)) for row in shown], next_cursor=next_cursor)


def _view(row: MatchRow, court: str | None) -> MatchView:
    return MatchView(
        uuid=row.uuid,
        node_id=row.node_id,
        court=court,
        tournament_uuid=row.tournament_uuid,
        day_uuid=row.tournament_day_uuid,
        number=row.match_number,
        phase=row.phase,
        weight_class=row.weight_class,
        division=row.division,
        blue=MatchSide(name=row.blue_name, noc=row.blue_noc),
        red=MatchSide(name=row.red_name, noc=row.red_noc),
        status=row.status,
        winner=row.winner,
        decision=row.decision,
        rounds=None if row.blue_rounds is None or row.red_rounds is None
        else Tally(blue=row.blue_rounds, red=row.red_rounds),
        loaded_at=_at(row.loaded_ms),
        ready_at=_at(row.ready_ms) if row.ready_ms is not None else None,
        finished_at=_at(row.finished_ms) if row.finished_ms is not None else None,
    )


def _at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
