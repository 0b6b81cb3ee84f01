"""Messages between slave and master: versioned pydantic models, msgpack on the wire.

Every ZeroMQ message is one msgpack map with ``v`` (the wire version) and ``type`` (the
discriminator). PUB carries ``event``, ``changes`` and ``heartbeat``; the ROUTER/DEALER pair
carries ``catchup_request`` / ``catchup_page``, ``changes_request`` / ``changes_page``, ``ack``,
``file_request`` / ``file_chunk`` and the director's ``command`` / ``command_result``. Anything that does not decode, has an
unknown version or fails validation raises :class:`WireError`; receivers count and log it.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgpack
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from shared.changes import RowChange
from shared.match_snapshot import MatchSnapshot
from shared.records import EventRecord

__all__ = [
    "MAX_CHUNK_BYTES",
    "MAX_MESSAGE_BYTES",
    "SERVICE_TYPE",
    "TOPIC_CHANGES",
    "TOPIC_EVENT",
    "TOPIC_HEARTBEAT",
    "TOPIC_IVR",
    "WIRE_VERSION",
    "Ack",
    "CatchupPage",
    "CatchupRequest",
    "ChangesMessage",
    "ChangesPage",
    "ChangesRequest",
    "Command",
    "CommandResult",
    "EventMessage",
    "FileChunk",
    "FileError",
    "FileRequest",
    "Health",
    "Heartbeat",
    "IvrNotice",
    "Message",
    "ObsStatus",
    "Outcome",
    "WireError",
    "decode",
    "encode",
]

#: 2: ``event_category`` holds only the plan's seven categories (K P H TH TB R O).
#: 3: the heartbeat's ``match`` is a typed :class:`MatchSnapshot` (was a free-form map).
#: 4: row changes (``changes``, ``changes_request``, ``changes_page``, ``Heartbeat.last_rev``,
#:    ``EventRecord.rev``).
WIRE_VERSION: Final = 4
SERVICE_TYPE = "_restrike-slave._tcp.local."
TOPIC_EVENT = b"evt"
TOPIC_CHANGES = b"chg"
TOPIC_HEARTBEAT = b"hb"
TOPIC_IVR = b"ivr"
#: Catch-up pages are the largest messages (a few MB); anything far beyond is refused.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: The most file bytes one ``file_chunk`` carries (a transfer asks for 256 KB at a time).
MAX_CHUNK_BYTES = 1024 * 1024


class WireError(ValueError):
    """A message that cannot be accepted: undecodable, wrong version or invalid."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    v: Literal[4] = WIRE_VERSION


class EventMessage(_Wire):
    """One committed event, published right after its commit."""

    type: Literal["event"] = "event"
    record: EventRecord


class Health(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    cpu_percent: float = 0.0
    memory_percent: float = 0.0
    disk_free_bytes: int = 0


class ObsStatus(BaseModel):
    """OBS as the slave sees it: both connections' state with the reason and versions, outputs, scene.

    Unknown keys are ignored (not refused) so that a field added later does not make an older
    master drop the whole heartbeat; every field has a default for heartbeats of older slaves.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)
    rec_connected: bool = False
    str_connected: bool = False
    recording: bool = False
    streaming: bool = False
    replay_buffer: bool = False
    current_scene: str | None = None
    rec_state: Literal["disabled", "down", "connecting", "up"] = "disabled"
    str_state: Literal["disabled", "down", "connecting", "up"] = "disabled"
    rec_reason: str | None = Field(None, max_length=500, description="Why OBS_REC is not up")
    str_reason: str | None = Field(None, max_length=500, description="Why OBS_STR is not up")
    rec_version: str | None = Field(None, max_length=100, description="OBS and obs-websocket versions")
    str_version: str | None = Field(None, max_length=100)
    ivr_active: bool = Field(False, description="A video review is on air (clip open, IVR scene)")
    rec_process: str | None = Field(
        None, max_length=500, description="OBS_REC's program when the agent runs it ([obs.rec.process]): pid, crashes"
    )
    str_process: str | None = Field(None, max_length=500, description="Likewise for OBS_STR")


class Heartbeat(_Wire):
    """About once a second: who the slave is, how far it has stored, how it is doing."""

    type: Literal["heartbeat"] = "heartbeat"
    node_id: str
    court: str
    hostname: str
    version: str
    epoch: str
    last_seq: int = Field(ge=0)
    last_rev: int = Field(0, ge=0, description="Every row change up to this revision has been published")
    sent_ms: int
    pub_port: int
    router_port: int
    interval_seconds: float = Field(1.0, gt=0, description="When the next heartbeat is due; 3 missed = offline")
    health: Health = Health()
    obs: ObsStatus = ObsStatus()
    match: MatchSnapshot | None = Field(None, description="The court's current match, with the seq it is folded up to")
    received: int = 0
    dropped: int = 0
    tournament_uuid: str | None = None
    tournament_name: str | None = None
    tournament_day_uuid: str | None = None
    day_number: int | None = None
    day_date: str | None = Field(None, pattern=r"^\d{4}-\d{2}-\d{2}$")


class CatchupRequest(_Wire):
    """Master to slave: "every event after ``(epoch, after_seq)``", at most ``limit`` per page.

    When the slave's database has another epoch than asked for, it answers from the start
    of its own epoch: the master then learns the new epoch from the page.
    """

    type: Literal["catchup_request"] = "catchup_request"
    request_id: int
    epoch: str | None = None
    after_seq: int = Field(0, ge=0)
    limit: int = Field(2000, ge=1, le=20_000)


class CatchupPage(_Wire):
    """Slave to master: one page of stored events in ``seq`` order; ``done`` on the last page."""

    type: Literal["catchup_page"] = "catchup_page"
    request_id: int
    epoch: str
    last_seq: int = Field(ge=0, description="The slave's newest seq when the page was read")
    records: list[EventRecord]
    done: bool


class ChangesMessage(_Wire):
    """Rows that changed since ``after_rev``, in revision order, published after their commit.

    ``after_rev`` chains the messages: the master takes one only if it holds every change up
    to ``after_rev``; otherwise it asks the ROUTER for what it missed.
    """

    type: Literal["changes"] = "changes"
    node_id: str
    epoch: str
    after_rev: int = Field(ge=0)
    changes: list[RowChange] = Field(min_length=1)


class ChangesRequest(_Wire):
    """Master to slave: "every row whose revision is above ``after_rev``", at most ``limit`` per page.

    Revisions belong to one database file: when ``epoch`` is not the slave's, it answers from 0.
    """

    type: Literal["changes_request"] = "changes_request"
    request_id: int
    epoch: str | None = None
    after_rev: int = Field(0, ge=0)
    limit: int = Field(2000, ge=1, le=20_000)


class ChangesPage(_Wire):
    """Slave to master: one page of changed rows in revision order; ``done`` on the last page."""

    type: Literal["changes_page"] = "changes_page"
    request_id: int
    epoch: str
    last_rev: int = Field(ge=0, description="The slave's newest revision when the page was read")
    changes: list[RowChange]
    done: bool


class Ack(_Wire):
    """Master to slave: everything up to ``seq`` of ``epoch`` is stored centrally."""

    type: Literal["ack"] = "ack"
    epoch: str
    seq: int = Field(ge=0)


class IvrNotice(_Wire):
    """A video review went on or off air at a court: the overlays' opening and closing animations.

    Best effort on PUB (a missed one is corrected by the heartbeat's ``obs.ivr_active``); the
    lasting record is the court's ``ivr_events`` log.
    """

    type: Literal["ivr"] = "ivr"
    node_id: str
    court: str
    state: Literal["started", "ended"]
    at_ms: int
    match_uuid: str | None = None
    match_number: str | None = None
    challenge_by: str | None = None
    challenge_result: str | None = None
    clip: str | None = Field(None, description="The clip's file name")


#: Why a court did not send a chunk: ``busy`` asks the master to try again shortly; the others are final.
FileError = Literal["not_found", "refused", "busy", "unreadable"]


class FileRequest(_Wire):
    """Master to slave: ``size`` bytes of a replay clip from ``offset`` (zguide ch. 7, "Transferring Files").

    The master keeps a few of these in flight (its credit) and asks for the next offset as each
    chunk lands: a transfer resumes from any offset, and the court never reads ahead of the master.
    """

    type: Literal["file_request"] = "file_request"
    request_id: int = Field(ge=0, description="One id per transfer; every chunk of it answers with it")
    path: str = Field(
        min_length=1, max_length=1024, pattern=r"^[^\x00]+$",
        description="The clip as the court names it: absolute, or relative to its videos root",
    )
    offset: int = Field(ge=0)
    size: int = Field(ge=1, le=MAX_CHUNK_BYTES)


class FileChunk(_Wire):
    """Slave to master: the bytes at ``offset`` (fewer than asked only at the end), or why not."""

    type: Literal["file_chunk"] = "file_chunk"
    request_id: int = Field(ge=0)
    offset: int = Field(ge=0)
    data: bytes = Field(b"", max_length=MAX_CHUNK_BYTES)
    total_size: int = Field(0, ge=0, description="The file's size when this chunk was read")
    mtime_ns: int = Field(0, ge=0, description="The file's modification time: a changed file restarts a resumed transfer")
    eof: bool = Field(False, description="``data`` reaches the end of the file")
    error: FileError | None = None
    detail: str | None = Field(None, max_length=500, description="The court's reason, for the operator")

    @model_validator(mode="after")
    def _consistent(self) -> FileChunk:
        if self.error is not None and self.data:
            raise ValueError("a chunk with an error carries no data")
        if self.error is None and self.offset + len(self.data) > self.total_size:
            raise ValueError(f"data up to byte {self.offset + len(self.data)} of a {self.total_size}-byte file")
        return self


#: How a command ended at the court: it ran, it could not (the reason says why), or time ran out.
Outcome = Literal["done", "failed", "expired"]
#: Longest a command may be given (restarting OBS is the slowest action).
MAX_COMMAND_MS = 600_000


class Command(_Wire):
    """Master to slave (DEALER -> ROUTER, never PUB): run ``action`` once, within the deadline.

    The court runs a ``command_id`` at most once, also across its restarts, and answers a
    repeat with the recorded outcome. ``args`` is checked per action by the court
    (``shared.commands``), so arguments it cannot use still get an answer under this id.
    The court measures the time left from its own receipt (``deadline_ms - sent_ms``), so
    laptop clocks that disagree do not matter.
    """

    type: Literal["command"] = "command"
    command_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    node_id: str = Field(min_length=1, max_length=64, description="The court it is meant for")
    action: str = Field(min_length=1, max_length=64)
    args: dict[str, Any] = Field(default_factory=dict)
    sent_ms: int
    deadline_ms: int

    @model_validator(mode="after")
    def _deadline(self) -> Command:
        if not 0 < self.deadline_ms - self.sent_ms <= MAX_COMMAND_MS:
            raise ValueError(f"the deadline must lie 1 ms to {MAX_COMMAND_MS // 1000} s after the sending time")
        return self


class CommandResult(_Wire):
    """Slave to master: how a command ended, how long it took at the court, what it answers."""

    type: Literal["command_result"] = "command_result"
    command_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    node_id: str = Field(min_length=1, max_length=64)
    action: str = Field(min_length=1, max_length=64)
    outcome: Outcome
    reason: str | None = Field(None, max_length=2000)
    duration_ms: float = Field(ge=0)
    replayed: bool = Field(False, description="Answered from the court's record: this id had run already")
    data: dict[str, Any] | None = Field(None, description="The action's answer (shared.commands), e.g. a health report")


Message = Annotated[
    EventMessage | ChangesMessage | Heartbeat | IvrNotice | CatchupRequest | CatchupPage | ChangesRequest | ChangesPage
    | Ack | FileRequest | FileChunk | Command | CommandResult,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)


def encode(message: _Wire) -> bytes:
    """msgpack bytes of a message (bytes fields stay binary)."""
    packed: bytes = msgpack.packb(message.model_dump(mode="python"), use_bin_type=True)
    return packed


def decode(payload: bytes) -> Message:
    """The message in ``payload``; raises :class:`WireError` with a reason an operator can read."""
    if len(payload) > MAX_MESSAGE_BYTES:
        raise WireError(f"message of {len(payload)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        data = msgpack.unpackb(payload, raw=False, strict_map_key=True, max_bin_len=MAX_MESSAGE_BYTES)
    except (msgpack.exceptions.UnpackException, ValueError, TypeError) as exc:
        raise WireError(f"not a msgpack message: {exc}") from None
    if not isinstance(data, dict):
        raise WireError(f"expected a map, got {type(data).__name__}")
    if data.get("v") != WIRE_VERSION:
        raise WireError(f"unsupported wire version {data.get('v')!r} (this build speaks {WIRE_VERSION})")
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise WireError(f"invalid {data.get('type')!r} message: {exc.error_count()} error(s): "
                        f"{exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from None
