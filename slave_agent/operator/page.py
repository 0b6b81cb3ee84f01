"""The operator page itself (NiceGUI): both OBS connections, the match, the last events, REPLAY.

Built once per process; each browser tab gets its own page, refreshed from the agent twice a
second. The page only reads the agent and calls the same replay entry point as the API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from nicegui import ui

if TYPE_CHECKING:
    from slave_agent.operator.server import OperatorServer

__all__ = ["build_pages"]

_STATE_COLOURS = {"up": "positive", "connecting": "warning", "down": "negative", "disabled": "grey"}
#: The director's message banner, by priority (Quasar colour classes).
_MESSAGE_COLOURS = {"low": "bg-grey-3", "normal": "bg-blue-1", "high": "bg-orange-3", "urgent": "bg-red-4 text-white"}
_Notice = Literal["positive", "negative", "warning", "info"]
_OUTCOME_COLOURS: dict[str, _Notice] = {
    "done": "positive", "partial": "warning", "failed": "negative", "skipped": "warning",
}


def build_pages(server: OperatorServer) -> None:
    """Register the page with NiceGUI (once per process)."""

    @ui.page("/")
    def index() -> None:
        status = server.status()
        ui.page_title(f"reStrike · {status['court']}")
        with ui.header().classes("items-center justify-between"):
            ui.label(status["court"]).classes("text-h5").mark("court")
            day = ui.label().mark("day")
        director = ui.label().classes("text-h6 w-full q-pa-sm rounded-borders").mark("director-message")
        with ui.row().classes("w-full items-stretch"):
            connections = {name: _connection_card(name) for name in ("rec", "str")}
            with ui.card().classes("grow"):
                ui.label("Match").classes("text-subtitle2")
                match = ui.label().classes("text-h6").mark("match")
                score = ui.label().classes("text-h4").mark("score")
                clock = ui.label().mark("clock")
        with ui.row().classes("w-full items-center"):
            replay = ui.button("REPLAY").props("size=xl color=red").classes("text-h4 px-16 py-6").mark("replay")
            replay.on_click(lambda: _replay(server, replay))
            ui.button("Review over", on_click=lambda: _review_over(server)).props("outline").mark("review-over")
            on_air = ui.badge("REVIEW ON AIR", color="red").mark("on-air")
        ui.label("Last triggers").classes("text-subtitle2")
        triggers = ui.table(columns=_columns("time", "trigger", "match", "outcome", "took_ms", "reason"), rows=[],
                            row_key="time").classes("w-full").mark("triggers")
        ui.label("Last events").classes("text-subtitle2")
        events = ui.table(columns=_columns("seq", "time", "code", "match", "raw", "clip"), rows=[],
                          row_key="seq").classes("w-full").mark("events")

        def refresh() -> None:
            now = server.status()
            day.text = now["day"] or "no tournament day active"
            obs = now["obs"] or {}
            for name, (badge, detail) in connections.items():
                state = obs.get(f"{name}_state", "disabled")
                badge.text, badge.props["color"] = state.upper(), _STATE_COLOURS.get(state, "grey")
                badge.update()
                detail.text = obs.get(f"{name}_reason") or obs.get(f"{name}_version") or ""
            m = now["match"]
            match.text = f"{m['number'] or '-'}  {m['blue'] or 'blue'}  vs  {m['red'] or 'red'}"
            score.text = m["score"]
            clock.text = f"round {m['round']} · {m['clock'] or '--:--'} · {m['status']}"
            on_air.set_visibility(now["review_on_air"])
            triggers.rows = now["triggers"]
            events.rows = now["events"]
            latest = now["messages"][0] if now["messages"] else None
            director.set_visibility(latest is not None)
            if latest is not None:
                director.text = f"Director, {latest['time']}: {latest['text']}"
                director.classes(replace=f"text-h6 w-full q-pa-sm rounded-borders {_MESSAGE_COLOURS[latest['priority']]}")

        refresh()
        ui.timer(0.5, refresh)


def _connection_card(name: str) -> tuple[Any, Any]:
    with ui.card().classes("w-64"):
        ui.label(f"OBS_{name.upper()}").classes("text-subtitle2")
        badge = ui.badge("…").mark(f"obs-{name}")
        detail = ui.label().classes("text-caption").mark(f"obs-{name}-detail")
    return badge, detail


def _columns(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "label": n.replace("_", " "), "field": n, "align": "left"} for n in names]


async def _replay(server: OperatorServer, button: Any) -> None:
    button.disable()
    try:
        result = await server.async_replay()
    finally:
        button.enable()
    ui.notify(f"Replay {result['outcome']}" + (f": {result['reason']}" if result.get("reason") else ""),
              type=_OUTCOME_COLOURS.get(result["outcome"], "info"))


async def _review_over(server: OperatorServer) -> None:
    agent = server.agent
    if agent.director is not None:
        log = await agent.director.async_review_over("operator")
        ui.notify(f"Review over: {log.outcome}", type=_OUTCOME_COLOURS.get(log.outcome, "info"))
