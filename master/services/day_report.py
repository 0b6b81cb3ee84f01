"""A tournament day after the fact: each court's YouTube chapters, and the day's IVR report.

The chapters are the court's own rule (:func:`shared.chapters.day_plan`) applied to what the
master holds of the court: its ready moments in stream time and its stream sessions.
The report counts each court's events by the seven categories and its instant-replay
reviews: how many, who asked, what came of them, how long the match stood still (from the
replay to the review's end at the court), and the IVR desk's part (each replay's review
state, who reviewed it, how long after the replay). :func:`build_report` is the arithmetic alone,
so it is tested without a database; :func:`day_report` reads what it needs.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict

from master.db.repository import CentralRepository, TriggerRow
from shared.chapters import ChapterPlan, day_plan
from shared.pss import Category

__all__ = ["CourtReport", "DayReport", "Review", "ReviewTimes", "build_report", "court_chapters", "day_report"]

#: The seven categories in the plan's order: a report's columns and a chart's series.
CATEGORIES: tuple[str, ...] = tuple(c.value for c in Category)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReviewTimes(_Frozen):
    """Durations in seconds: from a replay to the end of its review at the court, or to the desk's review."""

    count: int
    median_s: float | None
    longest_s: float | None
    total_s: float

    @classmethod
    def of(cls, seconds: list[float]) -> ReviewTimes:
        return cls(count=len(seconds), median_s=round(statistics.median(seconds), 1) if seconds else None,
                   longest_s=round(max(seconds), 1) if seconds else None, total_s=round(sum(seconds), 1))


class Review(_Frozen):
    """One replay's review at a court: when the replay began (UTC ms) and how long the match stood still."""

    at_ms: int
    seconds: float


class CourtReport(_Frozen):
    """One court's day: events by category, replays and their reviews."""

    node_id: str
    court: str
    categories: dict[str, int]
    """Every one of the seven categories, in order (0 when none)."""
    replays: int
    """Replays the court ran (any outcome)."""
    challenges: dict[str, int]
    """Replays by who asked: blue, red, referee, or unknown."""
    results: dict[str, int]
    """Reviews by result: accepted, denied, closed, or pending (no result yet)."""
    failed: int
    """Replays that did not fully work (outcome failed or partial)."""
    reviews: ReviewTimes
    review_list: list[Review]
    """Each review, in the day's order (the chart's points)."""
    desk: dict[str, int]
    """Replays by the desk's review state: pending, reviewed, resolved."""
    desk_times: ReviewTimes
    """From each replay to the desk's review of it (replays the desk has reviewed)."""
    reviewers: list[str]

    @property
    def events(self) -> int:
        return sum(self.categories.values())

    @property
    def review_seconds(self) -> list[float]:
        return [r.seconds for r in self.review_list]


class DayReport(_Frozen):
    day_uuid: str
    courts: list[CourtReport]

    @property
    def categories(self) -> dict[str, int]:
        """The seven categories over every court."""
        return {c: sum(court.categories[c] for court in self.courts) for c in CATEGORIES}

    @property
    def reviews(self) -> ReviewTimes:
        return ReviewTimes.of([s for court in self.courts for s in court.review_seconds])


def day_report(repository: CentralRepository, day_uuid: str) -> DayReport:
    """The day's report from the central database (courts by name, then node id)."""
    names = {n.node_id: n.court_name or n.node_id for n in repository.nodes()}
    return build_report(day_uuid, repository.day_categories(day_uuid), repository.day_triggers(day_uuid), names)


def court_chapters(repository: CentralRepository, day_uuid: str, node_id: str, now: dt.datetime) -> ChapterPlan:
    """A court's YouTube chapters of the day as the master holds them (a live stream ends ``now``)."""
    return day_plan(repository.match_starts(day_uuid, node_id), repository.stream_sessions(day_uuid, node_id),
                    int(now.timestamp() * 1000))


def build_report(
    day_uuid: str, categories: Iterable[tuple[str, str, int]], ivr: Iterable[TriggerRow], names: Mapping[str, str]
) -> DayReport:
    """Counts per court from ``(node id, category, events)`` and the day's triggers (per court in time order)."""
    counts: dict[str, Counter[str]] = {}
    for node_id, category, number in categories:
        counts.setdefault(node_id, Counter())[category] += number
    triggers: dict[str, list[TriggerRow]] = {}
    for row in ivr:
        triggers.setdefault(row.node_id, []).append(row)
    courts = []
    for node_id in counts.keys() | triggers.keys():
        rows = triggers.get(node_id, [])
        replays = [r for r in rows if r.trigger == "replay"]
        reviews = _reviews(rows)
        courts.append(CourtReport(
            node_id=node_id, court=names.get(node_id, node_id),
            categories={c: counts.get(node_id, Counter())[c] for c in CATEGORIES},
            replays=len(replays),
            challenges=dict(Counter(r.challenge_by or "unknown" for r in replays)),
            results=dict(Counter(r.challenge_result or "pending" for r in replays)),
            failed=sum(1 for r in replays if r.outcome in ("failed", "partial")),
            reviews=ReviewTimes.of([r.seconds for r in reviews]), review_list=reviews,
            desk=dict(Counter(r.state for r in replays)),
            desk_times=ReviewTimes.of([
                round(r.reviewed_at.timestamp() - r.requested_ms / 1000, 1) for r in replays if r.reviewed_at is not None
            ]),
            reviewers=sorted({r.reviewer for r in replays if r.reviewer}),
        ))
    return DayReport(day_uuid=day_uuid, courts=sorted(courts, key=lambda c: (c.court.casefold(), c.node_id)))


def _reviews(rows: list[TriggerRow]) -> list[Review]:
    """Each replay paired with the first review end after it (before the next replay): the review's length.
    A replay whose review never ended (or ended by another way) has none."""
    reviews: list[Review] = []
    started: int | None = None
    for row in rows:
        if row.trigger == "replay":
            started = row.requested_ms
        elif row.trigger == "review_over" and started is not None:
            reviews.append(Review(at_ms=started, seconds=round((row.requested_ms - started) / 1000, 1)))
            started = None
    return reviews
