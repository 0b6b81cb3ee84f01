"""Each court's result of a director's command, line by line as the courts answer.

:func:`async_command` is the one way a console page sends a command and shows it: it picks the
courts, puts a card with a waiting line per court on the page, fills each line from the
controller's ``on_result`` (outcome, time taken, reason or report) and sums the card up at the end.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from nicegui import ui

from master.control import Controller, ControlResult, CourtResult, UnknownCourt
from shared.commands import BadArguments, LogLines

__all__ = ["OUTCOME_LOOK", "ResultCard", "async_command"]

#: Icon and text colour of each outcome (None: no answer yet).
OUTCOME_LOOK: dict[str | None, tuple[str, str]] = {
    "done": ("check_circle", "text-green-700"), "failed": ("cancel", "text-red-700"),
    "expired": ("timer_off", "text-red-700"), None: ("hourglass_empty", "text-amber-700"),
}

OnResult = Callable[[CourtResult], object]


async def async_command(
    control: Controller | None,
    container: ui.element,
    title: str,
    courts: Sequence[str] | None,
    call: Callable[[Controller, list[str], OnResult], Awaitable[ControlResult]],
    *,
    keep: int | None = None,
) -> ControlResult | None:
    """Run ``call(control, node_ids, on_result)`` (a send or an announcement) on ``courts`` (all for
    None) with a :class:`ResultCard` in ``container``; None, with a notice, when nothing was sent."""
    if control is None:
        ui.notify("The master's command service is not running", type="negative")
        return None
    try:
        targets = control.select(courts)
    except UnknownCourt as exc:
        ui.notify(str(exc), type="negative")
        return None
    if not targets:
        ui.notify("No court is connected: nothing to send to", type="warning")
        return None
    card = ResultCard(container, title, [(t.node_id or "", t.name) for t in targets], keep=keep)
    try:
        result = await call(control, [t.node_id or "" for t in targets], card.show)
    except BadArguments as exc:
        card.refused(str(exc))
        return None
    card.finish(result)
    return result


@dataclass
class _CourtLine:
    row: ui.row
    icon: ui.icon
    outcome: ui.label
    took: ui.label
    detail: ui.label
    block: ui.column


class ResultCard:
    """One command on a page: a line per court, filled in as each court answers."""

    def __init__(self, container: ui.element, title: str, courts: list[tuple[str, str]], keep: int | None = None) -> None:
        """A card on top of ``container`` with a waiting line per ``(node_id, name)``; at most ``keep`` cards stay."""
        self.began = time.monotonic()
        self.lines: dict[str, _CourtLine] = {}
        with container:
            self.card = ui.card().classes("w-full p-3 gap-1 bg-white border-l-8 border-amber-500").mark("result")
        self.card.move(container, target_index=0)
        for old in container.default_slot.children[keep:] if keep is not None else ():
            container.remove(old)
        with self.card:
            with ui.row().classes("w-full items-baseline no-wrap gap-2"):
                ui.label(title).classes("text-lg font-bold min-w-0 break-words").mark("result-title")  # all of a message
                ui.space()
                self.summary = ui.label("sending…").classes("whitespace-nowrap text-slate-700 font-bold").mark("result-summary")
            for node_id, name in courts:
                block = ui.column().classes("w-full gap-0")
                with block, ui.row().classes("w-full items-center gap-2 no-wrap text-amber-700").mark(f"result-{name}") as row:
                    row.props["data-court"] = name  # a stable handle for browser tests and scripts
                    icon = ui.icon(OUTCOME_LOOK[None][0]).classes("text-2xl")
                    ui.label(name).classes("w-24 shrink-0 text-lg font-bold")
                    outcome = ui.label("waiting").classes("w-28 shrink-0 text-lg").mark("outcome")
                    took = ui.label("").classes("w-16 shrink-0 text-right font-mono")
                    detail = ui.label("").classes("text-slate-800 grow").mark("detail")
                self.lines[node_id] = _CourtLine(row, icon, outcome, took, detail, block)
            self._waiting = set(self.lines)
            self.timer = ui.timer(0.25, self._tick)

    def _tick(self) -> None:
        waited = f"{time.monotonic() - self.began:.1f} s"
        for node_id in self._waiting:
            self.lines[node_id].took.text = waited

    def show(self, result: CourtResult) -> None:
        """A court's result, as soon as it is there (the controller's ``on_result``)."""
        line = self.lines.get(result.node_id)
        if line is None:
            return
        self._waiting.discard(result.node_id)
        icon, colour = OUTCOME_LOOK[result.outcome]
        line.icon.name = icon
        line.row.classes(remove=OUTCOME_LOOK[None][1], add=colour)
        line.outcome.text = result.outcome + (" (again)" if result.replayed else "")
        line.took.text = f"{result.round_trip_ms:.0f} ms"
        line.detail.text = result.detail()
        if isinstance(result.data, LogLines) and result.data.lines:
            with line.block, ui.expansion(f"{len(result.data.lines)} log lines").classes("w-full").mark("log-lines"):
                ui.label("\n".join(result.data.lines)).classes(
                    "w-full font-mono text-xs whitespace-pre-wrap break-words max-h-80 overflow-auto bg-slate-100 p-2")

    def finish(self, result: ControlResult) -> None:
        self.timer.cancel()
        counts = [f"{result.count(o)} {o}" for o in ("done", "failed", "expired") if result.count(o)]
        self.summary.text = " · ".join(counts) or "no court"
        good = result.count("done") == len(result.results)
        self.card.classes(remove="border-amber-500", add="border-green-600" if good else "border-red-600")

    def refused(self, reason: str) -> None:
        self.timer.cancel()
        self.summary.text = "not sent"
        self.card.classes(remove="border-amber-500", add="border-red-600")
        with self.card:
            ui.label(reason).classes("text-red-700 font-bold")
