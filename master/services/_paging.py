"""Opaque cursors for keyset pages: a list's name, its order and the last row's position.

A cursor handed out by one list (events, matches) or one order is refused by another with
:class:`InvalidCursor`, instead of quietly returning the wrong rows.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from master.db.repository import RowPosition

__all__ = ["InvalidCursor", "Keyset", "decode_cursor", "encode_cursor"]


class InvalidCursor(ValueError):
    """A cursor that this list did not hand out (garbled, of another list, or of the other order)."""


def encode_cursor(kind: str, position: RowPosition, newest_first: bool) -> str:
    text = f"{kind}:{'n' if newest_first else 'o'}:{position.time_ms}:{position.row_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, newest_first: bool) -> RowPosition:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        cursor_kind, order, time_ms, row_id = text.split(":")
        position = RowPosition(int(time_ms), int(row_id))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor(f"{cursor!r} is not a cursor of this list") from None
    if cursor_kind != kind:
        raise InvalidCursor(f"this cursor belongs to another list ({cursor_kind}), not to {kind}")
    if order != ("n" if newest_first else "o"):
        raise InvalidCursor("this cursor belongs to the other order (newest first / oldest first)")
    return position


class _Positioned(Protocol):
    @property
    def position(self) -> RowPosition: ...


Row = TypeVar("Row", bound=_Positioned)


@dataclass(frozen=True)
class Keyset:
    """One list's pages: at most ``max_page`` rows, read one row past the page to know whether
    another follows (``start`` before the query, ``split`` after it)."""

    kind: str
    noun: str
    max_page: int

    def start(self, limit: int, cursor: str | None, newest_first: bool) -> RowPosition | None:
        """Where the page starts; :class:`ValueError` for a page size out of range, :class:`InvalidCursor`."""
        if not 1 <= limit <= self.max_page:
            raise ValueError(f"a page holds 1 to {self.max_page} {self.noun}, not {limit}")
        return decode_cursor(self.kind, cursor, newest_first) if cursor else None

    def split(self, rows: Sequence[Row], limit: int, newest_first: bool) -> tuple[Sequence[Row], str | None]:
        """The page's rows (``rows`` holds up to ``limit + 1``) and the next page's cursor (None: the last)."""
        if len(rows) <= limit:
            return rows, None
        return rows[:limit], encode_cursor(self.kind, rows[limit - 1].position, newest_first)
