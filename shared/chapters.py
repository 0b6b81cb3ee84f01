"""YouTube chapters for one day's stream: a list YouTube accepts, and what it left out.

YouTube shows chapters only when the first is at 0:00, there are at least three, they
ascend and each lasts at least 10 s; titles must fit on one line and a description may
not contain ``<`` or ``>``. :func:`plan_chapters` turns candidate chapters (each match's
start in stream time) into such a list, applying these rules in order:

1. Untitled or non-finite candidates are dropped. Titles are cleaned: whitespace and
   control characters collapse to single spaces; ``<``/``>`` become ``‹``/``›``;
   titles longer than 100 characters are shortened with ``…``.
2. Times are floored to whole seconds, as YouTube reads them. A negative time (the match
   began before the stream) is clamped to 0:00; a time at or after a known stream end
   is dropped.
3. An exact duplicate (same second, same title) is dropped.
4. A chapter shorter than 10 s (to the next candidate, or to the known end of the
   stream) is dropped: the later entry wins, as a re-loaded match supersedes the
   earlier load, and its span goes to the chapter before it.
5. A chapter with the same title as the one before it (the same match loaded again)
   continues that chapter and is dropped.
6. The first chapter must be at 0:00: one that starts within 10 s moves there; otherwise
   an intro chapter is added at 0:00.
7. Fewer than three chapters left: the plan is not valid and says why.

Every change is described in :attr:`ChapterPlan.notes`, using the same time format as
the rendered file so the operator can match them up.

:func:`day_plan` is the one way a court (from its SQLite) and the master (from the central
database) turn a day's match starts and stream sessions into chapters.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from shared.stream_time import Session, parse_hms

__all__ = [
    "MAX_TITLE_CHARS",
    "MIN_CHAPTERS",
    "MIN_CHAPTER_SECONDS",
    "Chapter",
    "ChapterPlan",
    "MatchStart",
    "day_plan",
    "match_title",
    "plan_chapters",
    "render",
    "stream_duration",
]

MIN_CHAPTER_SECONDS = 10
MIN_CHAPTERS = 3
MAX_TITLE_CHARS = 100
_DESCRIPTION_LIMIT_BYTES = 5000


@dataclass(frozen=True, slots=True)
class Chapter:
    """One line of the chapter list: whole seconds into the stream and a clean title."""

    seconds: int
    title: str


@dataclass(frozen=True, slots=True)
class ChapterPlan:
    """The chapters to publish, what was changed to get them, and whether YouTube takes them."""

    chapters: list[Chapter]
    notes: list[str] = field(default_factory=list)
    problem: str | None = None

    @property
    def valid(self) -> bool:
        """True when :func:`render` gives a list YouTube will show as chapters."""
        return self.problem is None


@dataclass(frozen=True, slots=True)
class MatchStart:
    """A match's ready moment in stream time (``H:MM:SS``) and what names it."""

    str_timestamp: str
    match_number: int | str | None = None
    phase: str | None = None
    weight_class: str | None = None
    blue_name: str | None = None
    blue_noc: str | None = None
    red_name: str | None = None
    red_noc: str | None = None


def day_plan(
    starts: Iterable[MatchStart], stream_sessions: Sequence[Session], now_ms: int, *, intro_title: str = "Start"
) -> ChapterPlan:
    """A day's chapters: each match's ready moment, within the stream the day's sessions published."""
    candidates = [
        (float(parse_hms(s.str_timestamp)),
         match_title(s.match_number, s.phase, s.weight_class, s.blue_name, s.blue_noc, s.red_name, s.red_noc))
        for s in starts
    ]
    return plan_chapters(
        candidates, stream_duration_seconds=stream_duration(stream_sessions, now_ms), intro_title=intro_title
    )


def stream_duration(stream_sessions: Sequence[Session], now_ms: int) -> float | None:
    """Published stream time of a day so far: the end of its last session (in start order), or now if
    it is live; None without a stream."""
    if not stream_sessions:
        return None
    last = stream_sessions[-1]
    end = last.end_ms if last.end_ms is not None else now_ms
    return last.cumulative_offset_seconds + (end - last.start_ms) / 1000


def plan_chapters(
    candidates: Iterable[tuple[float, str]],
    *,
    stream_duration_seconds: float | None = None,
    intro_title: str = "Start",
) -> ChapterPlan:
    """A chapter list YouTube accepts, built from ``(stream seconds, title)`` candidates.

    The rules and their order are in the module docstring. Bad candidates never raise;
    they become notes. A bad ``intro_title`` or duration is a caller's mistake and raises
    ``ValueError``.
    """
    intro = _clean_title(intro_title)
    if not intro or "<" in intro or ">" in intro or len(intro) > MAX_TITLE_CHARS:
        raise ValueError(f"intro title {intro_title!r} is not a usable chapter title")
    end = stream_duration_seconds
    if end is not None and not (math.isfinite(end) and end >= 0):
        raise ValueError(f"stream duration {end!r} must be a finite number of seconds >= 0")

    notes: list[str] = []
    chapters = _clean_entries(candidates, end, notes)
    chapters = _drop_duplicates(chapters, notes)
    chapters = _drop_short(chapters, end, notes)
    chapters = _merge_repeats(chapters, notes)
    chapters = _start_at_zero(chapters, intro, notes)

    if len(chapters) < MIN_CHAPTERS:
        return ChapterPlan(
            chapters,
            notes,
            problem=(
                f"only {len(chapters)} chapter(s) left after cleaning; YouTube shows chapters "
                f"only when there are at least {MIN_CHAPTERS}"
            ),
        )
    size = len(_lines(chapters).encode())
    if size > _DESCRIPTION_LIMIT_BYTES:
        notes.append(
            f"the list is {size} bytes but a YouTube description holds at most "
            f"{_DESCRIPTION_LIMIT_BYTES}; shorten titles or drop chapters before publishing"
        )
    return ChapterPlan(chapters, notes)


def render(plan: ChapterPlan) -> str:
    """The ``H:MM:SS Title`` lines to paste into the video description."""
    if not plan.valid:
        raise ValueError(f"cannot render an invalid chapter plan: {plan.problem}")
    return _lines(plan.chapters)


def match_title(
    match_number: int | str | None = None,
    phase: str | None = None,
    weight_class: str | None = None,
    blue_name: str | None = None,
    blue_noc: str | None = None,
    red_name: str | None = None,
    red_noc: str | None = None,
) -> str:
    """``Match 101 · Semifinals M -68kg · Perica (CRO) vs Stevica (GER)``, leaving out what is unknown.

    Returns an empty string when nothing is known; :func:`plan_chapters` drops such a
    candidate with a note rather than inventing a title.
    """
    number = _part(match_number)
    blue = _athlete(blue_name, blue_noc)
    red = _athlete(red_name, red_noc)
    parts = [
        f"Match {number}" if number else "",
        " ".join(p for p in (_part(phase), _part(weight_class)) if p),
        " vs ".join(a for a in (blue, red) if a),
    ]
    return " · ".join(p for p in parts if p)


def _clean_entries(
    candidates: Iterable[tuple[float, str]], end: float | None, notes: list[str]
) -> list[Chapter]:
    entries: list[tuple[float, str]] = []
    for raw_seconds, raw_title in candidates:
        title = _clean_title(raw_title)
        if not title:
            notes.append(f"dropped an untitled chapter at {_stamp_any(raw_seconds)}")
            continue
        if not math.isfinite(raw_seconds):
            notes.append(f"dropped {_q(title)}: its time {raw_seconds!r} is not a number")
            continue
        if "<" in title or ">" in title:
            title = title.replace("<", "‹").replace(">", "›")
            notes.append(f"replaced < and > in {_q(title)}: YouTube refuses them in descriptions")
        if len(title) > MAX_TITLE_CHARS:
            title = title[: MAX_TITLE_CHARS - 1].rstrip() + "…"
            notes.append(f"shortened {_q(title)} to {MAX_TITLE_CHARS} characters")
        entries.append((raw_seconds, title))

    entries.sort(key=lambda e: e[0])  # stable: equal times keep their input order
    cleaned: list[Chapter] = []
    for raw_seconds, title in entries:
        if end is not None and raw_seconds >= end:
            notes.append(
                f"dropped {_q(title)} at {_stamp_any(raw_seconds)}: at or after the end of "
                f"the stream ({_stamp_any(end)})"
            )
            continue
        if raw_seconds < 0:
            notes.append(
                f"moved {_q(title)} from {_stamp_any(raw_seconds)} to 0:00: it began before the stream"
            )
        cleaned.append(Chapter(math.floor(max(raw_seconds, 0.0)), title))
    return cleaned


def _drop_duplicates(entries: list[Chapter], notes: list[str]) -> list[Chapter]:
    kept: list[Chapter] = []
    seen: set[Chapter] = set()
    for entry in entries:
        if entry in seen:
            notes.append(f"dropped a duplicate of {_q(entry.title)} at {_stamp(entry.seconds)}")
            continue
        seen.add(entry)
        kept.append(entry)
    return kept


def _drop_short(entries: list[Chapter], end: float | None, notes: list[str]) -> list[Chapter]:
    kept: list[Chapter] = []
    for i, entry in enumerate(entries):
        if i + 1 < len(entries):
            following = entries[i + 1]
            gap: float = following.seconds - entry.seconds
            what = f"before {_q(following.title)}"
        elif end is not None:
            gap = end - entry.seconds
            what = "before the end of the stream"
        else:
            kept.append(entry)
            continue
        if gap >= MIN_CHAPTER_SECONDS:
            kept.append(entry)
        else:
            notes.append(
                f"dropped {_q(entry.title)} at {_stamp(entry.seconds)}: only "
                f"{math.floor(gap)} s {what} (YouTube needs {MIN_CHAPTER_SECONDS} s)"
            )
    return kept


def _merge_repeats(entries: list[Chapter], notes: list[str]) -> list[Chapter]:
    kept: list[Chapter] = []
    for entry in entries:
        if kept and kept[-1].title == entry.title:
            notes.append(
                f"dropped {_q(entry.title)} at {_stamp(entry.seconds)}: the same match goes on "
                f"from the chapter at {_stamp(kept[-1].seconds)}"
            )
            continue
        kept.append(entry)
    return kept


def _start_at_zero(chapters: list[Chapter], intro: str, notes: list[str]) -> list[Chapter]:
    if chapters and chapters[0].seconds == 0:
        return chapters
    if chapters and chapters[0].seconds < MIN_CHAPTER_SECONDS:
        first = chapters[0]
        notes.append(
            f"moved {_q(first.title)} from {_stamp(first.seconds)} to 0:00: YouTube's first "
            "chapter must start at 0:00"
        )
        return [Chapter(0, first.title), *chapters[1:]]
    reason = f"the first chapter is at {_stamp(chapters[0].seconds)}" if chapters else "none was left"
    notes.append(f"added {_q(intro)} at 0:00: {reason}, and YouTube's list must start at 0:00")
    return [Chapter(0, intro), *chapters]


def _lines(chapters: list[Chapter]) -> str:
    return "".join(f"{_stamp(c.seconds)} {c.title}\n" for c in chapters)


def _clean_title(title: str) -> str:
    spaced = "".join(
        " " if ch.isspace() or unicodedata.category(ch) == "Cc" else ch for ch in title
    )
    return " ".join(spaced.split())


def _part(value: object) -> str:
    return "" if value is None else _clean_title(str(value))


def _athlete(name: str | None, noc: str | None) -> str:
    name_part, noc_part = _part(name), _part(noc)
    if name_part and noc_part:
        return f"{name_part} ({noc_part})"
    return name_part or noc_part


def _q(title: str) -> str:
    return f"'{title}'"


def _stamp(seconds: int) -> str:
    """``M:SS`` below an hour, ``H:MM:SS`` from an hour, as YouTube writes them."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _stamp_any(seconds: float) -> str:
    if not math.isfinite(seconds):
        return repr(seconds)
    sign = "-" if seconds < 0 else ""
    return sign + _stamp(math.floor(abs(seconds)))
