"""The replay triggers' decisions and names, with no I/O: which committed event starts what, and where files go.

Three triggers (design, "OBS"): a match loaded and ready starts its recording and the replay
buffer; a challenge (or the operator's REPLAY) saves, links and shows a clip; the end of the
review puts the live scene back. The director (:mod:`slave_agent.obs.director`) carries them out.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from shared.match_state import MatchState
from shared.records import EventRecord

__all__ = [
    "IVR_FOLDER",
    "ClipSpan",
    "Step",
    "StepOutcome",
    "Trigger",
    "TriggerKind",
    "TriggerLog",
    "clip_name",
    "clip_span",
    "decide",
    "overall",
    "record_folder",
    "recording_name",
    "safe_name",
]

#: The replay clips' subfolder of a day's recording folder.
IVR_FOLDER = "IVR recordings"
MAX_NAME = 150

_UNSAFE = re.compile(r'[<>:"/\\|?*%\x00-\x1f\x7f]+')  # Windows' reserved characters, controls, OBS's % codes
_SPACES = re.compile(r"\s+")
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
)


class TriggerKind(StrEnum):
    MATCH_READY = "match_ready"
    REPLAY = "replay"
    REVIEW_OVER = "review_over"


@dataclass(frozen=True, slots=True)
class Trigger:
    """What to do, why, and from which moment the steps are timed."""

    kind: TriggerKind
    source: str  # pss, operator, master, player_closed, clock
    at_ms: int
    match_uuid: str | None = None
    match_number: str | None = None
    challenge_by: str | None = None  # blue, red, referee
    challenge_result: str | None = None  # accepted, denied, closed


def decide(record: EventRecord, *, review_on_air: bool) -> Trigger | None:
    """The trigger a committed event starts, if any.

    ``chN`` with no argument asks for a review; ``chN;1|0|-1`` ends it; the round clock
    starting again ends a review that nobody closed. Answers to a resynchronisation request
    repeat the past, so they start nothing.
    """
    if not record.valid or record.resync:
        return None
    fields = record.parsed

    def trigger(kind: TriggerKind, source: str = "pss", by: str | None = None, result: str | None = None) -> Trigger:
        return Trigger(kind, source, record.received_ms, record.match_uuid, record.match_number, by, result)

    if record.code == "rdy":
        return trigger(TriggerKind.MATCH_READY)
    if record.code in ("ch0", "ch1", "ch2"):
        by = str(fields["by"]) if fields.get("by") else None
        if fields.get("state") == "requested":
            return trigger(TriggerKind.REPLAY, by=by)
        if review_on_air:
            return trigger(TriggerKind.REVIEW_OVER, by=by, result=str(fields.get("state")))
        return None
    if record.code == "clk" and fields.get("action") == "start" and review_on_air:
        return trigger(TriggerKind.REVIEW_OVER, "clock")
    return None


def safe_name(text: str, fallback: str = "unknown") -> str:
    """A file or folder name valid on Windows and Linux: no reserved characters or names, no
    trailing dot or space, spaces as ``-``, at most ``MAX_NAME`` characters."""
    cleaned = _UNSAFE.sub("", unicodedata.normalize("NFC", text))
    cleaned = _SPACES.sub("-", cleaned.strip()).strip(". -")[:MAX_NAME].rstrip(". -")
    if not cleaned:
        return fallback
    if cleaned.split(".")[0].upper() in _RESERVED:
        cleaned = f"_{cleaned}"
    return cleaned


def record_folder(videos_root: Path, tournament: str, day_number: int) -> Path:
    """``<videos root>/<Tournament>/Day <N>``."""
    return videos_root / safe_name(tournament, "Tournament") / f"Day {day_number}"


def recording_name(state: MatchState, match_number: str | None) -> str:
    """``<match>_<blue>_<NOC>_vs_<red>_<NOC>``, each part made safe (the extension is OBS's)."""
    parts = [
        safe_name(match_number or state.info.number or "", "match"),
        safe_name(state.blue.name or state.blue.short, "blue"), safe_name(state.blue.noc, "NOC"),
        "vs",
        safe_name(state.red.name or state.red.short, "red"), safe_name(state.red.noc, "NOC"),
    ]
    return "_".join(parts)[: MAX_NAME * 2]


def clip_name(match_number: str | None, saved_ms: int, extension: str) -> str:
    """``<match>_<UTC time>.<ext>``, e.g. ``101_20260728T154012Z.mkv``."""
    moment = datetime.fromtimestamp(saved_ms / 1000, UTC).strftime("%Y%m%dT%H%M%SZ")
    ext = safe_name(extension.lstrip("."), "mkv")
    return f"{safe_name(match_number or '', 'match')}_{moment}.{ext}"


@dataclass(frozen=True, slots=True)
class ClipSpan:
    """The stretch of time a saved clip shows: the events in it get the clip's link."""

    start_ms: int
    end_ms: int


def clip_span(saved_ms: int, buffer_seconds: float, buffer_started_ms: int | None) -> ClipSpan:
    """A clip ends when it is saved and reaches back the buffer's length (20 s: the challenge
    +-10 s), but never before the buffer started."""
    start = saved_ms - int(buffer_seconds * 1000)
    if buffer_started_ms is not None:
        start = max(start, min(buffer_started_ms, saved_ms))
    return ClipSpan(start, saved_ms)


class StepOutcome(StrEnum):
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a trigger: when it ended (ms after the trigger's event) and how long it took."""

    name: str
    outcome: StepOutcome
    at_ms: int
    took_ms: int
    detail: str | None = None


def overall(steps: list[Step]) -> str:
    """``done`` (every step), ``skipped`` (none could run), ``failed`` (none worked) or ``partial``."""
    outcomes = {s.outcome for s in steps}
    if outcomes <= {StepOutcome.DONE}:
        return "done"
    if outcomes == {StepOutcome.SKIPPED}:
        return "skipped"
    if StepOutcome.DONE not in outcomes:
        return "failed"
    return "partial"


@dataclass(slots=True)
class TriggerLog:
    """A trigger's outcome as stored in ``ivr_events`` (and listed by ``restrike slave ivr list``)."""

    uuid: str
    trigger: Trigger
    finished_ms: int
    steps: list[Step]
    blue: str | None = None
    red: str | None = None
    recording_path: str | None = None
    clip_path: str | None = None
    clip_bytes: int | None = None
    clip_span: ClipSpan | None = None
    linked_events: int | None = None

    @property
    def outcome(self) -> str:
        return overall(self.steps)

    @property
    def reason(self) -> str | None:
        """The first problem, for a one-line listing."""
        for step in self.steps:
            if step.outcome is not StepOutcome.DONE and step.detail:
                return f"{step.name}: {step.detail}"
        return None
