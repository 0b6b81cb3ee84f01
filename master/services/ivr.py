"""The IVR desk: every court's replays with the master's review of each (pending / reviewed / resolved).

The replays are the courts' rows (``central_ivr_events``, replicated); the reviews are the
master's own (``central_ivr_reviews``), so a court's later change to a replay never touches
one. A review's ``reviewed_at`` is when its current state was set (notes added later keep it):
the IVR report's review time is ``reviewed_at - requested_at``. Synchronous (the database is):
code on the event loop calls it in a thread.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from master.db.repository import CentralRepository, IvrFilter, IvrRow
from master.services._paging import InvalidCursor, Keyset
from master.services._scope import resolve_scope

__all__ = ["InvalidCursor", "IvrDeskService", "IvrPage", "IvrQuery", "Replay", "Review", "ReviewState"]

MAX_PAGE = 1000
MAX_NOTES = 4000
_PAGES = Keyset("ivr", "replays", MAX_PAGE)


class ReviewState(StrEnum):
    """Where a replay stands at the desk: nobody looked yet, looked at, or settled (nothing more to do)."""

    PENDING = "pending"
    REVIEWED = "reviewed"
    RESOLVED = "resolved"


class IvrQuery(BaseModel):
    """Which replays, in an operator's terms; every part optional, all combined."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tournament: str | None = Field(None, description="Tournament name or UUID (for the day)")
    day: str | None = Field(None, description="Day UUID, TOURNAMENT:N, or N of the tournament given (or the only one)")
    court: str | None = Field(None, description="Court name or node id")
    states: tuple[ReviewState, ...] = ()
    newest_first: bool = True


class Review(BaseModel):
    """The desk's review of a replay; ``reviewer`` / ``reviewed_at`` None while nobody has set a state."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: ReviewState = ReviewState.PENDING
    notes: str = ""
    reviewer: str | None = None
    reviewed_at: dt.datetime | None = None


class Replay(BaseModel):
    """One replay a court saved, as the desk lists it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uuid: str
    node_id: str
    court: str | None = Field(description="The court's name as the master knows it")
    tournament_day_uuid: str | None
    match_number: str | None
    blue: str | None = Field(description="Athlete and NOC, e.g. 'KIM Tae-hun (KOR)'")
    red: str | None
    challenge_by: str | None = Field(description="Who asked for the replay: blue, red, referee (None: the operator)")
    challenge_result: str | None = Field(description="accepted, denied, closed; None while the court has none")
    outcome: str = Field(description="What the court's replay trigger did: done, partial, failed or skipped")
    reason: str | None
    clip_path: str | None = Field(description="The clip's path at the court; None: no clip was saved")
    clip_bytes: int | None
    requested_at: dt.datetime
    review: Review


class IvrPage(BaseModel):
    """One page; ``next_cursor`` asks for the page after it, ``None`` on the last page."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    replays: list[Replay]
    next_cursor: str | None = None


class IvrDeskService:
    """Reads the replays with their reviews, and writes reviews."""

    def __init__(self, repository: CentralRepository) -> None:
        self.repository = repository

    def page(self, query: IvrQuery, *, limit: int = 100, cursor: str | None = None) -> IvrPage:
        """Up to ``limit`` replays after ``cursor``; :class:`LookupError` for an unknown court, day or
        tournament, :class:`InvalidCursor` for a cursor this list did not hand out."""
        after = _PAGES.start(limit, cursor, query.newest_first)
        nodes = self.repository.nodes()
        scope = resolve_scope(self.repository, nodes, tournament=query.tournament, day=query.day, court=query.court)
        flt = IvrFilter(node_ids=scope.node_ids, day_uuid=scope.day_uuid, states=tuple(s.value for s in query.states))
        rows = self.repository.replays(flt, limit=limit + 1, newest_first=query.newest_first, after=after)
        names = {node.node_id: node.court_name for node in nodes}
        shown, next_cursor = _PAGES.split(rows, limit, query.newest_first)
        return IvrPage(replays=[_replay(row, names.get(row.node_id)) for row in shown], next_cursor=next_cursor)

    def replay(self, uuid: str) -> Replay | None:
        """One replay by its UUID (None: the master holds no replay of that UUID)."""
        rows = self.repository.replays(IvrFilter(uuids=(uuid,)), limit=1)
        if not rows:
            return None
        names = {node.node_id: node.court_name for node in self.repository.nodes()}
        return _replay(rows[0], names.get(rows[0].node_id))

    def replays_of_clips(self, clips: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The replay UUID of each ``(node id, clip path)`` (an event's ``ivr_link``) the master knows."""
        return self.repository.replay_of_clip(sorted(set(clips)))

    def review(
        self, uuids: Sequence[str], state: ReviewState, reviewer: str, notes: str | None = None,
        at: dt.datetime | None = None,
    ) -> list[str]:
        """Set the state of one replay or several (bulk), and the notes unless None; returns the UUIDs
        written. :class:`LookupError` when none of them is a replay the master holds."""
        if not reviewer:
            raise ValueError("a review needs its reviewer")
        if notes is not None and len(notes) > MAX_NOTES:
            raise ValueError(f"notes hold up to {MAX_NOTES} characters, not {len(notes)}")
        if not uuids:
            return []
        written = self.repository.set_reviews(uuids, state.value, reviewer, at or dt.datetime.now(dt.UTC), notes)
        if not written:
            raise LookupError(f"no replay {', '.join(uuids[:3])}{'...' if len(uuids) > 3 else ''} at the master")
        return written


def _athlete(name: str | None, noc: str | None, logged: str | None) -> str | None:
    if name:
        return f"{name} ({noc})" if noc else name
    return logged


def _replay(row: IvrRow, court: str | None) -> Replay:
    return Replay(
        uuid=row.uuid,
        node_id=row.node_id,
        court=court,
        tournament_day_uuid=row.tournament_day_uuid,
        match_number=row.match_number,
        blue=_athlete(row.blue_name, row.blue_noc, row.blue),
        red=_athlete(row.red_name, row.red_noc, row.red),
        challenge_by=row.challenge_by,
        challenge_result=row.challenge_result,
        outcome=row.outcome,
        reason=row.reason,
        clip_path=row.clip_path,
        clip_bytes=row.clip_bytes,
        requested_at=dt.datetime.fromtimestamp(row.requested_ms / 1000, dt.UTC),
        review=Review(state=ReviewState(row.state), notes=row.notes, reviewer=row.reviewer, reviewed_at=row.reviewed_at),
    )
