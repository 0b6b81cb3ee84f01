"""The demo's live view, sized to the terminal: a narrow one drops the less important columns first.

Pure rendering from plain rows, so the fitting rule can be tested without a venue. Each court is
one line (names are cut with an ellipsis, never wrapped) and the latest events fill what is left
of the screen's height, so 80x24 shows everything that matters without scrolling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

__all__ = ["COURT_COLUMNS", "VERSUS", "Column", "CourtRow", "EventRow", "fit_columns", "render", "shorten"]

#: Columns that may shrink, with an ellipsis, down to this many characters.
FLEX_MIN = 10
#: Space between two columns.
GAP = 1
#: Joins the blue and the red athlete in one cell; each side is shortened alike.
VERSUS = " – "


@dataclass(frozen=True, slots=True)
class Column:
    """A column of the courts table; ``priority`` 0 is the last to go when space is short."""

    header: str
    priority: int
    flexible: bool = False
    least: int = FLEX_MIN  # a flexible column is dropped rather than made narrower than this


#: Display order; the demo's point (every event reaches the master) outranks the match details.
COURT_COLUMNS = (
    Column("court", 0),
    Column("match", 5),
    Column("blue – red", 6, flexible=True, least=30),
    Column("round", 8),
    Column("clock", 7),
    Column("score", 4),
    Column("status", 9),
    Column("at court", 1),
    Column("at master", 2),
    Column("link", 3),
)

_LINK = next(i for i, column in enumerate(COURT_COLUMNS) if column.header == "link")


@dataclass(frozen=True, slots=True)
class CourtRow:
    """One court as the view shows it; ``cells`` follow :data:`COURT_COLUMNS`."""

    cells: tuple[str, ...]
    online: bool


@dataclass(frozen=True, slots=True)
class EventRow:
    court: str
    seq: int
    code: str
    category: str
    raw: str


def fit_columns(columns: Sequence[Column], widths: Sequence[int], total: int) -> list[int]:
    """Indices (display order) of the columns that fit in ``total`` characters, the important first."""
    kept: list[int] = []
    used = 0
    for index in sorted(range(len(columns)), key=lambda i: columns[i].priority):
        need = min(widths[index], columns[index].least) if columns[index].flexible else widths[index]
        if used + need + (GAP if kept else 0) <= total:
            kept.append(index)
            used += need + (GAP if len(kept) > 1 else 0)
    return sorted(kept)


def _table(headers: Sequence[str], max_widths: Sequence[int | None]) -> Table:
    table = Table(box=None, padding=(0, GAP, 0, 0), pad_edge=False, show_edge=False, header_style="bold")
    for header, most in zip(headers, max_widths, strict=True):
        table.add_column(header, no_wrap=True, overflow="ellipsis", max_width=most)
    return table


def _flex_share(columns: Sequence[Column], widths: Sequence[int], kept: Sequence[int], total: int) -> int:
    """How wide each kept flexible column may be: what the fixed ones and the gaps leave, shared."""
    flexible = [i for i in kept if columns[i].flexible]
    fixed = sum(widths[i] for i in kept if not columns[i].flexible) + GAP * (len(kept) - 1)
    return max(FLEX_MIN, (total - fixed) // len(flexible)) if flexible else total


def shorten(text: str, width: int) -> str:
    """``text`` in ``width`` characters; a blue–red pair loses the same share on each side."""
    if len(text) <= width:
        return text
    parts = text.split(VERSUS)
    each = max(1, (width - len(VERSUS) * (len(parts) - 1)) // len(parts))
    return VERSUS.join(part if len(part) <= each else part[: each - 1] + "…" for part in parts)


def render(title: str, courts: Sequence[CourtRow], events: Sequence[EventRow], width: int, height: int) -> RenderableType:
    """The whole view in ``width`` x ``height`` (one line is kept free for the cursor)."""
    widths = [max([len(column.header)] + [len(row.cells[i]) for row in courts]) for i, column in enumerate(COURT_COLUMNS)]
    kept = fit_columns(COURT_COLUMNS, widths, width)
    share = _flex_share(COURT_COLUMNS, widths, kept, width)
    table = _table([COURT_COLUMNS[i].header for i in kept], [share if COURT_COLUMNS[i].flexible else None for i in kept])
    for row in courts:  # cells are text from the wire (names, raw lines): never read as Rich markup
        table.add_row(*(
            Text(row.cells[i], style="green" if row.online else "red") if i == _LINK
            else Text(shorten(row.cells[i], share) if COURT_COLUMNS[i].flexible else row.cells[i])
            for i in kept
        ))
    parts: list[RenderableType] = [Text(title, style="bold", no_wrap=True, overflow="ellipsis"), table]
    rows_left = height - 1 - (1 + 1 + len(courts)) - 2  # cursor, title, header + courts, blank + events header
    if rows_left > 0 and events:
        shown = events[-rows_left:]
        fixed = [max(len(h), *(len(c) for c in cells)) for h, cells in (
            ("court", [e.court for e in shown]), ("seq", [str(e.seq) for e in shown]),
            ("code", [e.code for e in shown]), ("cat", [e.category for e in shown]),
        )]
        recent = _table(["court", "seq", "code", "cat", "raw"], [None, None, None, None, max(FLEX_MIN, width - sum(fixed) - 4 * GAP)])
        for event in shown:
            recent.add_row(*(Text(cell) for cell in (event.court, str(event.seq), event.code, event.category, event.raw)))
        parts += [Text(""), recent]
    return Group(*parts)
