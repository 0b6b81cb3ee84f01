"""Row changes: what a court's database says about a row after it was first published.

Events are published once, at insert; but a stored event changes later (a day's stream
times recalculated, a replay clip linked, a match named after its first rows), and the
court's matches and OBS sessions change all the time. Every such row carries a revision
``rev`` from one counter per court database (``change_clock``): the larger, the newer. The
court publishes the row's current state with its revision; the master keeps, per row, the
state with the highest revision it has seen. State, not deltas: two changes of one row
between two reads travel as one, and applying a state twice is harmless.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.stream_time import SessionType

__all__ = ["EVENT_CHANGE_FIELDS", "EventChange", "IvrEventRecord", "MatchRecord", "RowChange", "SessionRecord"]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    rev: int = Field(ge=1, description="The court database's change counter when the row took this state")


class EventChange(_Row):
    """The fields of a stored event that may change after it was published; the rest never do."""

    kind: Literal["event"] = "event"
    node_id: str = Field(min_length=1, max_length=64)
    epoch: str = Field(min_length=1, max_length=64)
    seq: int = Field(ge=1)
    match_number: str | None = None
    rec_timestamp: str | None = None
    str_timestamp: str | None = None
    ivr_link: str | None = None


#: The mutable fields of an event, the same names in ``EventRecord`` and both databases.
EVENT_CHANGE_FIELDS = ("match_number", "rec_timestamp", "str_timestamp", "ivr_link")


class MatchRecord(_Row):
    """One ``matches`` row of a court: opened by ``pre``, named by ``mch``, filled as it is fought."""

    kind: Literal["match"] = "match"
    uuid: str = Field(min_length=1, max_length=64)
    tournament_uuid: str | None = None
    tournament_day_uuid: str | None = None
    match_number: str | None = None
    phase: str | None = None
    weight_class: str | None = None
    division: str | None = None
    blue_name: str | None = None
    blue_noc: str | None = None
    red_name: str | None = None
    red_noc: str | None = None
    status: str
    winner: str | None = None
    decision: str | None = None
    blue_rounds: int | None = None
    red_rounds: int | None = None
    loaded_ms: int
    ready_ms: int | None = None
    finished_ms: int | None = None


class SessionRecord(_Row):
    """One ``obs_sessions`` row: a stream, recording or replay-buffer session of a tournament day."""

    kind: Literal["session"] = "session"
    tournament_day_uuid: str = Field(min_length=1, max_length=64)
    session_type: SessionType
    session_number: int = Field(ge=1)
    start_ms: int
    end_ms: int | None = None
    is_active: bool
    interruption_reason: str | None = None
    time_offset_seconds: float = 0.0
    cumulative_offset_seconds: float = 0.0
    output_path: str | None = None


class IvrEventRecord(_Row):
    """One ``ivr_events`` row: what an OBS / instant-replay trigger did at a court, step by step.

    Written once when the trigger ends; a replay's ``challenge_result`` is filled in when its
    review ends.
    """

    kind: Literal["ivr"] = "ivr"
    uuid: str = Field(min_length=1, max_length=64)
    tournament_day_uuid: str | None = None
    match_uuid: str | None = None
    match_number: str | None = None
    trigger: str = Field(description="match_ready, replay or review_over")
    source: str = Field(description="pss, operator, master, player_closed or clock")
    outcome: str = Field(description="done, partial, failed or skipped")
    reason: str | None = None
    blue: str | None = None
    red: str | None = None
    challenge_by: str | None = None
    challenge_result: str | None = None
    recording_path: str | None = None
    clip_path: str | None = None
    clip_bytes: int | None = None
    clip_start_ms: int | None = None
    clip_end_ms: int | None = None
    linked_events: int | None = None
    requested_ms: int
    finished_ms: int
    steps: list[dict[str, Any]] = Field(default_factory=list, description="step, outcome, at_ms, took_ms, detail")


RowChange = Annotated[EventChange | MatchRecord | SessionRecord | IvrEventRecord, Field(discriminator="kind")]
