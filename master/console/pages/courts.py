"""``/``: a card per court, live. An offline court is red, first, and named in a banner at the top.

Reads the courts service's live view (:meth:`master.app.Master.courts`, memory only): health
and OBS state come with each heartbeat (looked for every second), the score with each event
(pushed by the live match state, coalesced). Only the cards that changed are redrawn, so 80
events a second across 8 courts do not redraw the board 80 times. Courts waiting for the
director's approval (found, key not pinned yet) come from the database every few seconds and
can be approved here, after a confirmation that shows the key's fingerprint.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator

from fastapi import Request
from nicegui import Client, ui

from master.console.context import ConsoleContext
from master.console.drawer import ControlDrawer
from master.console.push import Coalesced
from master.console.theme import frame
from master.services.courts import CourtView, stored_courts
from runtime.curve import BadKey, check_public_key, fingerprint
from shared.commands import Action

__all__ = ["register"]

#: Heartbeat news (health, OBS, online or not, "last heartbeat ... ago") is looked for this often.
REFRESH_SECONDS = 1.0
#: A match change reaches its card at once, then at most this often: a director reads cards, not frames
#: (the overlay pushes every frame; here 80 events a second would cost a tenth of a core per open page).
CARD_PUSH_SECONDS = 0.25
PENDING_SECONDS = 5.0
CPU_WARN = 85.0
MEMORY_WARN = 90.0
DISK_WARN_BYTES = 10 * 1024**3  # an hour of 1080p recording needs a few GB


def register(ctx: ConsoleContext) -> None:
    @ui.page("/")
    async def courts_page(request: Request, client: Client) -> None:
        with frame(ctx.accounts, request, "Courts"):
            shown: list[CourtView] = []
            waiting: list[CourtView] = []
            principal = request.state.principal
            drawer = ControlDrawer(ctx, principal.username)
            with ui.row().classes("w-full items-center -mb-2"):
                ui.space()
                ui.button("Remote control", icon="tune", on_click=lambda: drawer.open_for()).props(
                    "unelevated no-caps size=lg").mark("open-drawer")

            async def approve(view: CourtView, key: str | None) -> None:
                assert ctx.master.db is not None and ctx.master.store is not None
                try:
                    await ctx.master.db.call(ctx.master.store.approve_court, view.node_id, key, by=principal.username)
                except (LookupError, ValueError) as exc:
                    ui.notify(f"{view.court or view.node_id} not approved: {exc}", type="negative")
                    return
                ui.notify(f"{view.court or view.node_id} approved; the master connects to it within seconds", type="positive")
                await read_pending()

            def confirm(view: CourtView) -> None:
                with ui.dialog() as dialog, ui.card().classes("gap-3"):
                    ui.label(f"Approve {view.court or view.node_id}?").classes("text-xl font-bold")
                    ui.label(f"Node {view.node_id} at {view.offered_from or view.address or '?'}")
                    key_field: ui.input | None = None
                    if view.offered_key:
                        ui.label(f"Key fingerprint {view.offered_key}: compare it with the court's "
                                 "`restrike keys show court`").classes("font-mono")
                    else:  # a configured address, not found by mDNS: the key comes from the court's laptop
                        ui.label("This court has offered no key (a configured address). On its laptop run "
                                 "`restrike keys show court` and paste the public key here:")
                        key_field = ui.input("Court's public key").classes("w-[28rem] font-mono").mark("court-key")
                        shown_print = ui.label().classes("font-mono text-slate-700")

                        def show_fingerprint() -> None:
                            assert key_field is not None
                            try:
                                shown_print.text = f"fingerprint {fingerprint(check_public_key(key_field.value or ''))}"
                            except BadKey as exc:
                                shown_print.text = str(exc) if key_field.value else ""

                        key_field.on_value_change(show_fingerprint)

                    async def approved() -> None:
                        key = None
                        if key_field is not None:
                            try:
                                key = check_public_key(key_field.value or "")
                            except BadKey as exc:
                                ui.notify(f"Not a court key: {exc}", type="negative")
                                return
                        dialog.close()
                        await approve(view, key)

                    with ui.row():
                        ui.button("Cancel", on_click=dialog.close).props("flat")
                        ui.button("Approve", on_click=approved).props("unelevated").mark("confirm-approve")
                dialog.open()

            cards: dict[str, _CourtCard] = {}  # by node id: built once, then changed in place
            box = ui.column().classes("w-full gap-4")

            building = False  # the page's first board is being built, a card at a time

            def build_board() -> Iterator[None]:
                """The whole board, yielding after each card (the first build lets the event loop breathe between them)."""
                box.clear()
                cards.clear()
                now = dt.datetime.now(dt.UTC)
                courts = sorted(shown, key=_order)
                offline = [v.court or v.node_id for v in courts if v.status != "online"]
                with box:
                    if offline:
                        with ui.row().classes("w-full items-center gap-3 bg-red-700 text-white text-xl font-bold px-4 py-3 rounded"):
                            ui.icon("warning").classes("text-3xl")
                            ui.label(f"OFFLINE: {', '.join(offline)}").mark("offline-banner")
                    if not courts and not waiting:  # also until the pending ones are read: they take its place
                        ui.label("No court found yet: are the court agents running, and reachable?").classes(
                            "text-lg text-slate-600"
                        ).mark("no-courts")
                    # As many columns of readable cards as fit: four on a laptop, two beside the open drawer.
                    with ui.grid(columns="repeat(auto-fill, minmax(320px, 1fr))").classes("w-full gap-4 items-stretch"):
                        for view in waiting:
                            _pending_card(view, confirm)
                        for view in courts:
                            cards[view.node_id] = _CourtCard(view, now, drawer)
                            yield

            def board() -> None:
                """Redraw the whole board: a court came, went, changed status or name, or a pending one changed."""
                for _ in build_board():
                    pass

            def refresh() -> None:
                """Change the cards in place (a score is two labels); redraw the board only when its layout changed."""
                if building:
                    return  # the first build shows what the master knows now; the timer follows up
                views = ctx.master.courts()
                if [_layout(v) for v in sorted(views, key=_order)] != [_layout(v) for v in sorted(shown, key=_order)]:
                    shown[:] = views
                    drawer.show_courts(views)
                    board()
                    return
                shown[:] = views
                now = dt.datetime.now(dt.UTC)
                for view in views:
                    cards[view.node_id].show(view, now)

            async def read_pending() -> None:
                stored = await asyncio.to_thread(stored_courts, ctx.repository)
                linked = {view.node_id for view in shown}
                pending = [v for v in stored if v.status in ("pending", "revoked") and v.node_id not in linked]
                if pending != waiting and not building:
                    waiting[:] = pending
                    board()

            shown[:] = ctx.master.courts()
            drawer.show_courts(shown)
            # From memory, a card at a time: 8 cards are some 300 elements, which would hold the loop that
            # receives the courts' events and pushes the overlay; the pending courts (a database read) follow.
            building = True
            for _ in build_board():
                await asyncio.sleep(0)
            building = False
            push = Coalesced(refresh, CARD_PUSH_SECONDS)
            client.on_delete(ctx.master.matches.subscribe(push.poke))
            client.on_delete(push.close)
            ui.timer(REFRESH_SECONDS, refresh, immediate=False)  # heartbeats: health, OBS, online, age
            ui.timer(PENDING_SECONDS, read_pending)
            if "control" in request.query_params:
                drawer.open_for(request.query_params["control"] or None)


def _order(view: CourtView) -> tuple[bool, str]:
    """Offline courts first (impossible to miss), then by name."""
    return (view.status == "online", view.court or view.node_id)


def _layout(view: CourtView) -> tuple[str, str, str | None]:
    """What places a card on the board; anything else changes only the card."""
    return (view.node_id, view.status, view.court)


def _pending_card(view: CourtView, confirm: Callable[[CourtView], None]) -> None:
    revoked = view.status == "revoked"
    with ui.card().classes("w-full border-l-8 border-amber-500 bg-amber-50 gap-2 p-4").mark(f"pending-{view.node_id}"):
        with ui.row().classes("w-full items-center no-wrap"):
            ui.label(view.court or view.node_id).classes("text-2xl font-bold")
            ui.space()
            ui.badge("REVOKED" if revoked else "PENDING", color="warning").classes("text-lg px-3")
        ui.label(f"{view.node_id} · {view.offered_from or view.address or 'address unknown'}").classes("text-slate-700")
        ui.label(f"key {view.offered_key or 'not offered'}").classes("font-mono text-slate-700")
        ui.button("Approve…", on_click=lambda: confirm(view)).props("unelevated color=warning").mark(f"approve-{view.node_id}")


class _CourtCard:
    """One court's card, built once; :meth:`show` changes only what differs (NiceGUI sends just those).

    Building a card is some 35 elements: redrawn at every score and heartbeat of 8 courts, it
    took the master's whole event loop (the courts' events and the overlay wait on that loop).
    """

    def __init__(self, view: CourtView, now: dt.datetime, drawer: ControlDrawer) -> None:
        self.view: CourtView | None = None
        with ui.card().classes("w-full border-l-8 gap-2 p-4").mark(f"court-{view.court or view.node_id}") as self.root:
            with ui.row().classes("w-full items-center no-wrap"):
                ui.label(view.court or view.node_id).classes("text-2xl font-bold")
                ui.space()
                self.status = ui.badge().classes("text-lg px-3").mark("court-status")
            self.heard = ui.label()
            with ui.column().classes("w-full gap-2 p-0") as self.match:
                with ui.row().classes("w-full items-center text-base text-slate-700 -mb-1"):
                    self.number = ui.label().classes("font-bold")
                    ui.space()
                    self.phase = ui.label()
                self.sides: dict[str, tuple[ui.label, ui.label, ui.label]] = {}
                for side in ("blue", "red"):
                    with ui.row().classes(f"w-full items-center no-wrap gap-2 border-l-4 border-{side}-600 pl-2"):
                        name = ui.label().classes("text-lg truncate")
                        noc = ui.label().classes("text-slate-500 font-bold")
                        ui.space()
                        score = ui.label().classes("text-2xl font-black w-10 text-right")
                    self.sides[side] = (name, noc, score)
            with ui.column().classes("w-full gap-2 p-0") as self.obs:
                with ui.row().classes("gap-1 items-center"):
                    self.rec = _Connection("OBS REC")
                    self.str = _Connection("OBS STR")
                    self.outputs = [ui.badge().classes("text-sm") for _ in ("REC", "LIVE", "REPLAY")]
                    self.review = ui.badge("VIDEO REVIEW", color="accent").classes("text-sm animate-pulse")
                self.scene = ui.label().classes("text-slate-600")
            with ui.row().classes("gap-3") as self.health:
                self.metrics = [ui.label() for _ in ("CPU", "RAM", "disk")]
            _quick_actions(view, drawer)
        self.show(view, now)

    def show(self, view: CourtView, now: dt.datetime) -> None:
        online = view.status == "online"
        age = (now - view.last_seen).total_seconds() if view.last_seen else None
        heard = "never heard" if age is None else f"last heartbeat {max(0, age):.0f} s ago"
        self.heard.set_text(f"{heard} · lag {view.lag} event(s)")  # the age moves on without news
        if view == self.view:
            return
        self.view = view
        self.root.classes(remove=_CARD_COLOURS[not online], add=_CARD_COLOURS[online])
        self.status.set_text("ONLINE" if online else "OFFLINE")
        self.status.set_background_color("positive" if online else "negative")
        self.heard.classes(replace="text-slate-600" if online else "text-red-800 font-bold")
        match = view.match
        self.match.set_visibility(match is not None and bool(match.number))
        if match is not None and match.number:
            self.number.set_text(f"Match {match.number}")
            self.phase.set_text(f"{match.status.value} · round {match.round}")
            for side, athlete, score in (("blue", match.blue, match.score.blue), ("red", match.red, match.score.red)):
                name, noc, points = self.sides[side]
                name.set_text(athlete.name or "-")
                noc.set_text(athlete.noc)
                points.set_text(str(score))
        obs = view.obs
        self.obs.set_visibility(obs is not None)
        if obs is not None:
            self.rec.show(obs.rec_state, obs.rec_reason)
            self.str.show(obs.str_state, obs.str_reason)
            for badge, text, on in zip(
                self.outputs, ("REC", "LIVE", "REPLAY"), (obs.recording, obs.streaming, obs.replay_buffer), strict=True
            ):
                badge.set_text(("● " if on else "") + text)
                badge.set_background_color("negative" if on else "grey-4")
                badge.classes(replace="text-sm" + ("" if on else " text-slate-600"))
            self.review.set_visibility(obs.ivr_active)
            self.scene.set_visibility(bool(obs.current_scene))
            self.scene.set_text(f"scene: {obs.current_scene}")
        health = view.health
        self.health.set_visibility(health is not None)
        if health is not None:
            disk_gb = health.disk_free_bytes / 1024**3
            for label, (text, warn) in zip(self.metrics, (
                (f"CPU {health.cpu_percent:.0f} %", health.cpu_percent >= CPU_WARN),
                (f"RAM {health.memory_percent:.0f} %", health.memory_percent >= MEMORY_WARN),
                (f"disk {disk_gb:.0f} GB free", health.disk_free_bytes < DISK_WARN_BYTES),
            ), strict=True):
                label.set_text(("⚠ " if warn else "") + text)
                label.classes(replace="text-amber-700 font-bold" if warn else "text-slate-700")


def _quick_actions(view: CourtView, drawer: ControlDrawer) -> None:
    """One click for what a director does to one court most: the scene on air, a replay; the rest in the drawer."""
    with ui.row().classes("w-full gap-1 mt-auto pt-1 border-t"):
        for label, action, args in (("Live", Action.SET_SCENE, {"scene": "live"}), ("IVR", Action.SET_SCENE, {"scene": "ivr"}),
                                    ("Replay", Action.REPLAY, {})):
            ui.button(label, on_click=lambda a=action, g=args: drawer.async_run(a, dict(g), courts=[view.node_id])).props(
                "outline dense no-caps").classes("px-2").mark(f"quick-{label.lower()}-{view.node_id}")
        ui.space()
        ui.button("More…", icon="tune", on_click=lambda: drawer.open_for(view.node_id)).props(
            "flat dense no-caps").mark(f"quick-more-{view.node_id}")


_CARD_COLOURS = {True: "border-green-600 bg-white", False: "border-red-600 bg-red-100"}  # by online
_STATE_COLOUR = {"up": "positive", "connecting": "warning", "down": "negative", "disabled": "grey-5"}
_STATE_MARK = {"up": "✓", "connecting": "…", "down": "✕", "disabled": "off"}


class _Connection:
    """An OBS connection's badge; why it is down in its tooltip."""

    def __init__(self, name: str) -> None:
        self.name = name
        with ui.badge().classes("text-sm") as self.badge:
            self.tooltip = ui.tooltip()

    def show(self, state: str, reason: str | None) -> None:
        self.badge.set_text(f"{self.name} {_STATE_MARK.get(state, state)}")
        self.badge.set_background_color(_STATE_COLOUR.get(state, "grey-5"))
        self.tooltip.set_text(reason or "")
        self.tooltip.set_visibility(bool(reason))
