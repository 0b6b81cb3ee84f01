"""The remote-control drawer of the courts page: commands to chosen courts, announcements, the audit trail.

Everything goes through the master's :class:`~master.control.Controller` as the signed-in user
(the audit's "who"). Each court's result is shown as it arrives, with the time it took; the
actions that stop or break something on air ask first, naming the courts they affect. The
audit tab pages through ``central_command_log`` with :func:`master.audit.read_commands`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from nicegui import ui

from master.audit import AuditRow, read_commands
from master.console.context import ConsoleContext
from master.console.results import OUTCOME_LOOK, async_command
from master.control import ControlResult
from master.services.courts import CourtView
from shared.commands import Action, Priority

__all__ = ["DESTRUCTIVE", "ControlDrawer"]

#: Actions that stop or interrupt something on air: each asks first, naming the courts.
DESTRUCTIVE: dict[Action, str] = {
    Action.STOP_RECORDING: "Stop recording",
    Action.STOP_REPLAY_BUFFER: "Stop the replay buffer",
    Action.RESTART_OBS: "Restart / reconnect OBS",
    Action.FINISH_DAY: "Finish the tournament day",
}

#: Commands kept in the drawer's result list (older ones are in the audit tab).
RESULTS_KEPT = 6
AUDIT_PAGE = 8
AUDIT_REFRESH_SECONDS = 3.0
KINDS = ["info", "schedule", "break", "warning", "medical"]


@dataclass(frozen=True)
class _Button:
    action: Action
    label: str
    icon: str
    args: Mapping[str, Any] = field(default_factory=dict)
    colour: str = "primary"


#: The one-click actions, in groups a director scans from the top.
_GROUPS: list[tuple[str, list[_Button]]] = [
    ("Scene on air", [
        _Button(Action.SET_SCENE, "Live scene", "videocam", {"scene": "live"}),
        _Button(Action.SET_SCENE, "IVR scene", "replay_circle_filled", {"scene": "ivr"}, "accent"),
    ]),
    ("Recording", [
        _Button(Action.START_RECORDING, "Start recording", "fiber_manual_record", colour="positive"),
        _Button(Action.STOP_RECORDING, "Stop recording…", "stop", colour="negative"),
    ]),
    ("Replay", [
        _Button(Action.START_REPLAY_BUFFER, "Start buffer", "play_arrow", colour="positive"),
        _Button(Action.STOP_REPLAY_BUFFER, "Stop buffer…", "stop", colour="negative"),
        _Button(Action.REPLAY, "Trigger replay", "replay", colour="accent"),
    ]),
    ("Stream audio", [
        _Button(Action.MUTE, "Mute", "volume_off", colour="secondary"),
        _Button(Action.UNMUTE, "Unmute", "volume_up", colour="secondary"),
    ]),
    ("OBS and court", [
        _Button(Action.RESTART_OBS, "Restart OBS…", "restart_alt", colour="negative"),
        _Button(Action.HEALTH, "Health now", "monitor_heart", colour="secondary"),
    ]),
]



def _names(views: list[CourtView], node_ids: list[str]) -> str:
    by_id = {v.node_id: v.court or v.node_id for v in views}
    return ", ".join(by_id.get(n, n) for n in node_ids)


class ControlDrawer:
    """One page's drawer: its court selection, the results of the commands sent from it."""

    def __init__(self, ctx: ConsoleContext, username: str) -> None:
        self.ctx = ctx
        self.username = username
        self.views: list[CourtView] = []
        self.selected: set[str] = set()
        self.audit_page = 0
        with ui.context.client.content:  # a drawer must be a child of the page itself, not of the frame's column
            self.drawer = ui.right_drawer(value=False, fixed=True, bordered=True).props("width=600").classes(
                "bg-slate-50 p-0").mark("control-drawer")
        self._built = False

    def _build(self) -> None:
        """The drawer's contents, made when it first opens: the courts page itself stays as light as it was."""
        if self._built:
            return
        self._built = True
        with self.drawer, ui.column().classes("w-full gap-3 p-4"):
            with ui.row().classes("w-full items-center no-wrap"):
                ui.label("Remote control").classes("text-2xl font-bold")
                ui.space()
                ui.button(icon="close", on_click=self.drawer.hide).props("flat round").mark("close-drawer")
            self._picker()
            with ui.tabs().classes("w-full").props("dense align=left") as tabs:
                commands = ui.tab("Commands").mark("tab-commands")
                announce = ui.tab("Announce").mark("tab-announce")
                self.audit_tab = ui.tab("Audit").mark("tab-audit")
            self.tabs = tabs
            with ui.tab_panels(tabs, value=commands, animated=False).classes("w-full bg-transparent"):
                with ui.tab_panel(commands).classes("p-0 gap-3"):
                    self._commands()
                with ui.tab_panel(announce).classes("p-0 gap-3"):
                    self._announce()
                with ui.tab_panel(self.audit_tab).classes("p-0 gap-2"):
                    self._audit()
            ui.label("Results, newest first").classes("text-lg font-bold text-slate-700")
            self.results = ui.column().classes("w-full gap-3").mark("results")
            ui.timer(AUDIT_REFRESH_SECONDS, self._refresh_audit_if_shown, immediate=False)

    # --- what the courts page calls -------------------------------------------------------------

    def show_courts(self, views: list[CourtView]) -> None:
        """The courts the master is linked to now (the page calls it on every change)."""
        linked = sorted(views, key=lambda v: v.court or v.node_id)
        if [(v.node_id, v.court, v.status) for v in linked] != [(v.node_id, v.court, v.status) for v in self.views]:
            self.views = linked
            self.selected &= {v.node_id for v in linked}
            self._picker.refresh()

    def open_for(self, node_id: str | None = None) -> None:
        """Open the drawer; with a court, that court alone is selected."""
        if node_id is not None:
            self.selected = {node_id}
            self._picker.refresh()
        self._build()
        self.drawer.show()

    # --- court selection ------------------------------------------------------------------------

    @ui.refreshable_method
    def _picker(self) -> None:
        with ui.row().classes("w-full items-center gap-x-4 gap-y-1 bg-white rounded p-2 border"):
            if not self.views:
                ui.label("No court linked yet.").classes("text-slate-600")
                return
            every = {v.node_id for v in self.views}
            ui.checkbox("All courts", value=bool(every) and self.selected >= every,
                        on_change=lambda e: self._choose(every if e.value else set())).classes(
                "font-bold").mark("select-all")
            for view in self.views:
                online = view.status == "online"
                ui.checkbox(view.court or view.node_id, value=view.node_id in self.selected,
                            on_change=lambda e, n=view.node_id: self._toggle(n, e.value)).classes(
                    "text-base" + ("" if online else " text-red-700 font-bold")).mark(f"select-{view.node_id}").tooltip(
                    "online" if online else "OFFLINE: its result will be an expiry")

    def _choose(self, node_ids: set[str]) -> None:
        self.selected = set(node_ids)
        self._picker.refresh()

    def _toggle(self, node_id: str, on: bool) -> None:
        (self.selected.add if on else self.selected.discard)(node_id)
        self._picker.refresh()

    # --- commands -------------------------------------------------------------------------------

    def _commands(self) -> None:
        for group, buttons in _GROUPS:
            with ui.row().classes("w-full items-center gap-2 no-wrap"):
                ui.label(group).classes("w-28 shrink-0 text-slate-700 font-bold")
                with ui.row().classes("gap-2"):
                    for b in buttons:
                        marker = "-".join(["do", b.action.value, *map(str, b.args.values())])  # do-set_scene-ivr, do-health
                        ui.button(b.label, icon=b.icon, on_click=lambda b=b: self.async_run(b.action, dict(b.args))).props(
                            f'unelevated no-caps padding="4px 10px" color={b.colour}').mark(marker)
        with ui.row().classes("w-full items-center gap-2 no-wrap"):
            ui.label("Other scene").classes("w-28 shrink-0 text-slate-700 font-bold")
            scene = ui.input(placeholder="scene name in OBS").props("dense outlined").classes("grow").mark("scene-name")
            ui.button("Put on air", on_click=lambda: self.async_run(Action.SET_SCENE, {"scene": scene.value.strip()})).props(
                "unelevated no-caps").mark("do-scene-named")
        with ui.row().classes("w-full items-center gap-2 no-wrap"):
            ui.label("Log lines").classes("w-28 shrink-0 text-slate-700 font-bold")
            lines = ui.number(value=100, min=1, max=2000, step=50, format="%d").props("dense outlined").classes("w-28")
            ui.button("Show recent lines", icon="subject",
                      on_click=lambda: self.async_run(Action.LOGS, {"lines": int(lines.value or 100)})).props(
                "unelevated no-caps color=secondary").mark("do-logs")
        with ui.expansion("Tournament day", icon="event").classes("w-full bg-white rounded border").mark("day-panel"):
            with ui.row().classes("w-full items-end gap-2"):
                name = ui.input("Tournament").props("dense outlined").classes("grow")
                number = ui.number("Day", value=1, min=1, max=60, format="%d").props("dense outlined").classes("w-20")
                date = ui.input("Date", value=dt.date.today().isoformat()).props("dense outlined type=date").classes("w-40")
            with ui.row().classes("gap-2"):
                ui.button("Activate day", icon="play_circle", on_click=lambda: self.async_run(Action.ACTIVATE_DAY, {
                    "tournament_name": name.value.strip(), "day_number": int(number.value or 1), "date": date.value,
                })).props("unelevated no-caps color=positive").mark("do-activate_day")
                ui.button("Finish day…", icon="stop_circle", on_click=lambda: self.async_run(Action.FINISH_DAY, {})).props(
                    "unelevated no-caps color=negative").mark("do-finish_day")

    async def async_run(
        self, action: Action, args: dict[str, Any], courts: list[str] | None = None
    ) -> ControlResult | None:
        """Send ``action`` to ``courts`` (node ids; default: the selected ones), after a confirmation
        for the destructive ones; the drawer opens to show each court's result."""
        chosen = sorted(self.selected) if courts is None else courts
        if not chosen:
            ui.notify("Choose the courts first (or All courts)", type="warning")
            return None
        if action in DESTRUCTIVE and not await self._confirmed(action, chosen):
            return None
        self.open_for()
        return await self._async_send(action, args, chosen)

    async def _confirmed(self, action: Action, chosen: list[str]) -> bool:
        names = _names(self.views, chosen)
        with ui.dialog() as dialog, ui.card().classes("gap-3 p-6").mark("confirm-dialog"):
            ui.label(f"{DESTRUCTIVE[action]} on {len(chosen)} court(s)?").classes("text-2xl font-bold")
            ui.label(names).classes("text-xl text-red-800 font-bold").mark("confirm-courts")
            ui.label("This acts on air now; it cannot be undone from here.").classes("text-slate-700")
            offline = [v.court or v.node_id for v in self.views if v.node_id in chosen and v.status != "online"]
            if offline:
                ui.label(f"OFFLINE now: {', '.join(offline)}: no answer is expected, its result will be an expiry").classes(
                    "text-amber-800 font-bold").mark("confirm-offline")
            with ui.row().classes("w-full justify-end"):
                ui.button("Cancel", on_click=lambda: dialog.submit(False)).props("flat no-caps").mark("confirm-cancel")
                ui.button(f"{DESTRUCTIVE[action]} on {len(chosen)}", on_click=lambda: dialog.submit(True)).props(
                    "unelevated no-caps color=negative").mark("confirm-action")
        try:
            return bool(await dialog)
        finally:
            dialog.delete()

    async def _async_send(self, action: Action, args: dict[str, Any], chosen: list[str]) -> ControlResult | None:
        title = action.value.replace("_", " ") + "".join(f" · {k} {v}" for k, v in args.items())
        return await async_command(
            self.ctx.master.control, self.results, title, chosen,
            lambda control, courts, shown: control.async_send(action, args, courts=courts, issued_by=self.username,
                                                              on_result=shown),
            keep=RESULTS_KEPT,
        )

    # --- announcements --------------------------------------------------------------------------

    def _announce(self) -> None:
        text = ui.textarea("Message shown on the courts' pages", validation={
            "500 characters at most": lambda v: len(v or "") <= 500}).props("outlined autogrow").classes("w-full").mark(
            "announce-text")
        with ui.row().classes("w-full items-center gap-3"):
            kind = ui.select(KINDS, value="info", label="Type").props("dense outlined").classes("w-36").mark("announce-kind")
            priority = ui.toggle([p.value for p in Priority], value=Priority.NORMAL.value).props("no-caps").mark(
                "announce-priority")

        async def send() -> None:
            if not (text.value or "").strip():
                ui.notify("Write the message first", type="warning")
                return
            if await self.async_announce(text.value.strip(), kind.value, Priority(priority.value)) is not None:
                text.value = ""

        ui.button("Send to the selected courts", icon="campaign", on_click=send).props("unelevated no-caps").mark(
            "announce-send")

    async def async_announce(self, text: str, kind: str, priority: Priority) -> ControlResult | None:
        """The announcement to the selected courts, each court's delivery shown as it arrives."""
        chosen = sorted(self.selected)
        if not chosen:
            ui.notify("Choose the courts first (or All courts)", type="warning")
            return None
        return await async_command(
            self.ctx.master.control, self.results, f"announcement · {priority.value} {kind} · “{text}”", chosen,
            lambda control, courts, shown: control.async_announce(text, courts=courts, priority=priority, kind=kind,
                                                                  issued_by=self.username, on_result=shown),
            keep=RESULTS_KEPT,
        )

    # --- audit ----------------------------------------------------------------------------------

    def _audit(self) -> None:
        with ui.row().classes("w-full items-center gap-2"):
            ui.button(icon="chevron_left", on_click=lambda: self._page(-1)).props("flat dense").mark("audit-newer").tooltip("newer")
            self.audit_where = ui.label().classes("text-slate-700")
            ui.button(icon="chevron_right", on_click=lambda: self._page(1)).props("flat dense").mark("audit-older").tooltip("older")
            ui.space()
            ui.button("Refresh", icon="refresh", on_click=self.async_load_audit).props("flat dense no-caps")
        self.audit_list = ui.column().classes("w-full gap-2").mark("audit")
        self.tabs.on_value_change(lambda e: self.async_load_audit() if e.value == "Audit" else None)

    async def _page(self, step: int) -> None:
        self.audit_page = max(0, self.audit_page + step)
        await self.async_load_audit()

    async def _refresh_audit_if_shown(self) -> None:
        if self.drawer.value and self.tabs.value == "Audit" and self.audit_page == 0:
            await self.async_load_audit()

    async def async_load_audit(self) -> None:
        """Read one page of the audit trail (whole commands, newest first) into the tab."""
        store = self.ctx.master.store
        if store is None:
            self.audit_where.text = "the master is not running"
            return
        rows = await asyncio.to_thread(read_commands, store.engine, limit=AUDIT_PAGE, offset=self.audit_page * AUDIT_PAGE,
                                       whole_commands=True)
        if not rows and self.audit_page > 0:  # paged past the end
            self.audit_page -= 1
            await self.async_load_audit()
            return
        self.audit_where.text = f"page {self.audit_page + 1} · commands {self.audit_page * AUDIT_PAGE + 1}-" \
                                f"{self.audit_page * AUDIT_PAGE + len({r.command_id for r in rows})} (UTC)"
        self.audit_list.clear()
        with self.audit_list:
            if not rows:
                ui.label("No command yet.").classes("text-slate-600")
            for _, group in groupby(rows, key=lambda r: r.command_id):
                _audit_entry(list(group))


def _audit_entry(rows: list[AuditRow]) -> None:
    first = rows[0]
    # Ids are for machines: left out of the line (all of them in its tooltip).
    args = " ".join(f"{k}={v}" for k, v in first.args.items() if not k.endswith(("_id", "_uuid")))
    with ui.card().classes("w-full p-3 gap-1 bg-white").mark(f"audit-{first.command_id[:8]}"):
        with ui.row().classes("w-full items-baseline gap-2 no-wrap"):
            issued = first.issued_at if first.issued_at.tzinfo else first.issued_at.replace(tzinfo=dt.UTC)  # SQLite: naive UTC
            ui.label(issued.astimezone(dt.UTC).strftime("%m-%d %H:%M:%S")).classes("font-mono text-slate-600 whitespace-nowrap")
            ui.label(first.action.replace("_", " ")).classes("text-lg font-bold whitespace-nowrap")
            ui.space()
            ui.label(f"by {first.issued_by}").classes("text-slate-700 font-bold whitespace-nowrap")
        if args:
            ui.label(args).classes("text-slate-700 break-all -mt-1").tooltip(
                " ".join(f"{k}={v}" for k, v in first.args.items()))
        for row in rows:
            icon, colour = OUTCOME_LOOK.get(row.outcome, OUTCOME_LOOK[None])
            with ui.row().classes(f"w-full items-center gap-2 no-wrap {colour}"):
                ui.icon(icon).classes("text-xl")
                ui.label(row.court_name or row.node_id).classes("w-24 shrink-0 font-bold")
                ui.label((row.outcome or "no answer") + (" (again)" if row.replayed else "")).classes("w-20 shrink-0")
                ui.label(f"{row.round_trip_ms:.0f} ms" if row.round_trip_ms is not None else "").classes(
                    "w-16 shrink-0 text-right font-mono text-slate-600")
                ui.label(row.reason or "").classes("text-slate-700 truncate")
