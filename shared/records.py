"""The stored event, as both ends of the system see it.

A slave builds one :class:`EventRecord` per stored row; the master stores the same
record keyed on ``(node_id, epoch, seq)``. The wire envelopes in :mod:`shared.wire`
carry it unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EventRecord", "ms_to_iso"]


def ms_to_iso(ms: int) -> str:
    """UTC milliseconds to ISO 8601 with a ``Z`` (the form people and logs read)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class EventRecord(BaseModel):
    """One PSS event as stored by a slave (its ``pss_events_v2`` row)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node_id: str = Field(min_length=1, max_length=64, description="The court slave that stored it")
    epoch: str = Field(min_length=1, max_length=64, description="Life of the slave's database file")
    seq: int = Field(ge=1, description="Strictly increasing within (node_id, epoch)")
    received_ms: int = Field(description="UTC receive time of the datagram, milliseconds")
    raw: str = Field(description="The protocol line as received (invalid UTF-8 backslash-escaped)")
    raw_datagram: bytes = Field(description="The whole datagram, verbatim")
    code: str
    event_category: str
    parsed: dict[str, Any] = Field(default_factory=dict)
    valid: bool = True
    error: str | None = None
    processing_us: int = Field(0, ge=0, description="Parse-to-commit time inside the slave")
    tournament_uuid: str | None = None
    tournament_day_uuid: str | None = None
    match_uuid: str | None = None
    match_number: str | None = None
    rec_timestamp: str | None = None
    str_timestamp: str | None = None
    ivr_link: str | None = None

    @property
    def timestamp(self) -> str:
        return ms_to_iso(self.received_ms)

    @classmethod
    def trusted(cls, **values: Any) -> EventRecord:
        """A record from values the store itself produced, without validation (the ingest hot path).

        Every field must be given; ``model_construct`` would cost seven times as much per
        event (and a full set of field names per record), and wire input is always validated
        by :func:`shared.wire.decode` instead.
        """
        record = object.__new__(cls)
        object.__setattr__(record, "__dict__", values)
        object.__setattr__(record, "__pydantic_fields_set__", set())  # nothing here uses exclude_unset
        object.__setattr__(record, "__pydantic_extra__", None)
        object.__setattr__(record, "__pydantic_private__", None)
        return record

