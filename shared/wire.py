"""Messages between slave and master: versioned pydantic models, msgpack on the wire.

Every ZeroMQ message is one msgpack map with ``v`` (the wire version) and ``type`` (the
discriminator). PUB carries ``event`` and ``heartbeat``; the ROUTER/DEALER pair carries
``catchup_request`` / ``catchup_page`` and ``ack``. Anything that does not decode, has an
unknown version or fails validation raises :class:`WireError`; receivers count and log it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgpack
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from shared.records import EventRecord

__all__ = [
    "MAX_MESSAGE_BYTES",
    "SERVICE_TYPE",
    "TOPIC_EVENT",
    "TOPIC_HEARTBEAT",
    "WIRE_VERSION",
    "Ack",
    "CatchupPage",
    "CatchupRequest",
    "EventMessage",
    "Health",
    "Heartbeat",
    "Message",
    "ObsStatus",
    "WireError",
    "decode",
    "encode",
]

WIRE_VERSION = 1
SERVICE_TYPE = "_restrike-slave._tcp.local."
TOPIC_EVENT = b"evt"
TOPIC_HEARTBEAT = b"hb"
#: Catch-up pages are the largest messages (a few MB); anything far beyond is refused.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class WireError(ValueError):
    """A message that cannot be accepted: undecodable, wrong version or invalid."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    v: Literal[1] = WIRE_VERSION


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
    """OBS connection state as the slave sees it (filled by the OBS supervisor)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rec_connected: bool = False
    str_connected: bool = False
    recording: bool = False
    streaming: bool = False
    replay_buffer: bool = False
    current_scene: str | None = None


class Heartbeat(_Wire):
    """About once a second: who the slave is, how far it has stored, how it is doing."""

    type: Literal["heartbeat"] = "heartbeat"
    node_id: str
    court: str
    hostname: str
    version: str
    epoch: str
    last_seq: int = Field(ge=0)
    sent_ms: int
    pub_port: int
    router_port: int
    interval_seconds: float = Field(1.0, gt=0, description="When the next heartbeat is due; 3 missed = offline")
    health: Health = Health()
    obs: ObsStatus = ObsStatus()
    match: dict[str, Any] | None = None
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


class Ack(_Wire):
    """Master to slave: everything up to ``seq`` of ``epoch`` is stored centrally."""

    type: Literal["ack"] = "ack"
    epoch: str
    seq: int = Field(ge=0)


Message = Annotated[
    EventMessage | Heartbeat | CatchupRequest | CatchupPage | Ack, Field(discriminator="type")
]
_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)


def encode(message: _Wire) -> bytes:
    """msgpack bytes of a message (bytes fields stay binary)."""
    return msgpack.packb(message.model_dump(mode="python"), use_bin_type=True)


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
