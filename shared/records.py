"""The stored event, as both ends of the system see it.

A slave builds one :class:`EventRecord` per stored row; the master stores the same
record keyed on ``(node_id, epoch, seq)``. The wire envelopes in :mod:`shared.wire`
carry it unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.pss.parser import Category

__all__ = ["EXPORT_COLUMNS", "EventRecord", "ms_to_iso"]

#: The columns of an event in CSV exports (keys of :meth:`EventRecord.export_fields`).
EXPORT_COLUMNS = (
    "seq", "timestamp", "event_code", "event_category", "valid", "resync", "match_number", "str_timestamp",
    "rec_timestamp", "ivr_link", "error", "raw",
)


def ms_to_iso(ms: int) -> str:
    """UTC milliseconds to ISO 8601 with a ``Z`` (the form people and logs read)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class EventRecord(BaseModel):
    """One PSS event as stored by a slave (its ``pss_events_v2`` row)."""

    # Categories are held as their plain text value ("R"), as both databases store them.
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    node_id: str = Field(min_length=1, max_length=64, description="The court slave that stored it")
    epoch: str = Field(min_length=1, max_length=64, description="Life of the slave's database file")
    seq: int = Field(ge=1, description="Strictly increasing within (node_id, epoch)")
    received_ms: int = Field(description="UTC receive time of the datagram, milliseconds")
    raw: str = Field(description="The protocol line as received (invalid UTF-8 backslash-escaped)")
    raw_datagram: bytes = Field(description="The whole datagram, verbatim")
    code: str
    event_category: Category = Field(description="One of the plan's seven categories, K P H TH TB R O")
    parsed: dict[str, Any] = Field(default_factory=dict)
    valid: bool = True
    error: str | None = None
    resync: bool = Field(
        False,
        description="An answer to the slave's pull request (the sender's last packet of a kind), not live traffic",
    )
    processing_us: int = Field(0, ge=0, description="Parse-to-commit time inside the slave")
    tournament_uuid: str | None = None
    tournament_day_uuid: str | None = None
    match_uuid: str | None = None
    match_number: str | None = None
    rec_timestamp: str | None = None
    str_timestamp: str | None = None
    ivr_link: str | None = None
    rev: int = Field(0, ge=0, description="Revision of the row's changeable fields (0: as first stored)")

    @property
    def timestamp(self) -> str:
        return ms_to_iso(self.received_ms)

    def export_fields(self) -> dict[str, Any]:
        """The event as the ``events`` commands print it (JSON lines, CSV): every field, the time in
        ISO 8601 (``timestamp``), the datagram as text (undecodable bytes backslash-escaped)."""
        data = self.model_dump(mode="json", exclude={"raw_datagram"})
        data["timestamp"] = self.timestamp
        data["raw_datagram"] = self.raw_datagram.decode("utf-8", "backslashreplace")
        data["event_code"] = self.code
        return data

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

