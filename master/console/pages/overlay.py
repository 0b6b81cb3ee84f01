"""``/overlay`` and ``/overlay?court=N``: the viewers' match cards for an OBS browser source (1920x1080).

Public and read-only: no sign-in, no control, nothing but the cards. Fed from the master's
in-memory match state: the page subscribes to :class:`~master.live.LiveMatches` and pushes each
change to the browser as it happens, a burst coalesced into one update per display frame
(:mod:`master.console.push`). Such an update recomputes only the cards of the courts that
changed (8 courts at 10 events a second each change one card at a time), and only what differs
goes over the websocket. No database, no polling for scores: a timer only re-checks what comes
with heartbeats (the stale mark, a replay on air, courts coming or going), every card. The
background is transparent so OBS composes the cards over the video.
"""

from __future__ import annotations

import datetime as dt

from nicegui import Client, ui

from master.console.cards import MatchCard, cards_by_node, in_order
from master.console.context import ConsoleContext
from master.console.push import Coalesced
from master.live import CourtMatch

__all__ = ["register"]

#: How often the cards are re-checked for what no match change tells: staleness (30 s), heartbeat news.
STALE_CHECK_SECONDS = 1.0

_CSS = """
html, body, .nicegui-layout, .q-page, .nicegui-content { background: transparent !important; }
body { margin: 0; overflow: hidden; font-family: 'Inter', 'Segoe UI', Roboto, Arial, sans-serif; }
.nicegui-content { padding: 0 !important; }
#popup, .q-notifications { display: none !important; }  /* a reconnect notice must never reach the stream */
.ov-stage { width: 1920px; height: 1080px; position: relative; }
.ov-list { position: absolute; right: 32px; top: 32px; width: 600px; display: flex; flex-direction: column; gap: 14px; }
.ov-single { position: absolute; left: 48px; bottom: 56px; width: 760px; }
.ov-card { background: rgba(12, 18, 32, 0.88); color: #fff; border-radius: 10px; overflow: hidden;
           box-shadow: 0 6px 18px rgba(0,0,0,.45); transition: opacity .4s; }
.ov-card.stale { opacity: .55; }
.ov-head { display: flex; align-items: center; gap: 12px; padding: 6px 14px; background: rgba(255,255,255,.08);
           font-size: 20px; letter-spacing: .04em; }
.ov-court { font-weight: 800; }
.ov-num { color: #cbd5e1; }
.ov-status { margin-left: auto; font-weight: 800; padding: 1px 10px; border-radius: 4px; background: #334155; }
.ov-status.live { background: #16a34a; }
.ov-status.break { background: #d97706; }
.ov-status.final { background: #475569; }
.ov-stale { display: none; font-weight: 800; color: #fbbf24; }
.ov-card.stale .ov-stale { display: inline; }
.ov-row { display: flex; align-items: center; height: 48px; font-size: 26px; }
.ov-side { width: 12px; align-self: stretch; }
.ov-row.blue .ov-side { background: #2563eb; }
.ov-row.red .ov-side { background: #dc2626; }
.ov-name { flex: 1; padding-left: 14px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; font-weight: 600; }
.ov-noc { width: 70px; color: #cbd5e1; font-weight: 700; }
.ov-won { width: 56px; text-align: center; color: #fbbf24; font-size: 18px; letter-spacing: 2px; }
.ov-score { width: 76px; text-align: center; font-size: 34px; font-weight: 900; background: rgba(255,255,255,.10); }
.ov-row.winner .ov-name::after { content: '  ✔'; color: #4ade80; }
.ov-foot { display: flex; gap: 18px; padding: 4px 14px 6px; font-size: 20px; color: #e2e8f0; }
.ov-clock { font-variant-numeric: tabular-nums; font-weight: 800; }
.ov-review { display: none; margin-left: auto; font-weight: 900; color: #111827; background: #fbbf24;
             padding: 0 10px; border-radius: 4px; }
.ov-review.shown { display: inline; }
.ov-review.active { animation: ov-pulse 1s ease-in-out infinite; }
@keyframes ov-pulse { 0%, 100% { opacity: 1; transform: scale(1); } 50% { opacity: .55; transform: scale(1.06); } }
.ov-single .ov-row { height: 64px; font-size: 34px; }
.ov-single .ov-score { width: 100px; font-size: 44px; }
"""


class _CardView:
    """The elements of one card; :meth:`show` changes only what differs (NiceGUI sends just those)."""

    def __init__(self) -> None:
        self.card: MatchCard | None = None
        with ui.element("div").classes("ov-card") as self.root:
            with ui.element("div").classes("ov-head"):
                self.court = ui.label().classes("ov-court")
                self.number = ui.label().classes("ov-num")
                self.stale = ui.label("NO SIGNAL").classes("ov-stale")
                self.status = ui.label().classes("ov-status")
            self.rows = {}
            for side in ("blue", "red"):
                with ui.element("div").classes(f"ov-row {side}") as row:
                    ui.element("div").classes("ov-side")
                    name = ui.label().classes("ov-name")
                    noc = ui.label().classes("ov-noc")
                    won = ui.label().classes("ov-won")
                    score = ui.label().classes("ov-score")
                self.rows[side] = (row, name, noc, won, score)
            with ui.element("div").classes("ov-foot"):
                self.round = ui.label()
                self.clock = ui.label().classes("ov-clock")
                self.review = ui.label().classes("ov-review")

    def show(self, card: MatchCard) -> None:
        if card == self.card:
            return
        self.card = card
        self.root.classes(add="stale") if card.stale else self.root.classes(remove="stale")
        self.court.set_text(card.court)
        self.number.set_text(f"Match {card.number}" if card.number else "")
        self.status.set_text(card.status)
        self.status.classes(replace="ov-status " + {"LIVE": "live", "BREAK": "break", "FINAL": "final"}.get(card.status, ""))
        for side, name, noc, won, score in (
            ("blue", card.blue, card.blue_noc, card.blue_rounds, card.blue_score),
            ("red", card.red, card.red_noc, card.red_rounds, card.red_score),
        ):
            row, name_label, noc_label, won_label, score_label = self.rows[side]
            row.classes(replace=f"ov-row {side}" + (" winner" if card.winner == side else ""))
            name_label.set_text(name)
            noc_label.set_text(noc)
            won_label.set_text("●" * won + "○" * max(0, 2 - won))  # best of 3: two rounds win
            score_label.set_text(str(score))
        self.round.set_text(f"Round {card.round}" if card.phase != "finished" else "")
        self.clock.set_text(card.clock if card.phase != "finished" else "")
        self.review.set_text(card.review)
        self.review.classes(replace="ov-review" + (" shown" if card.review else "") + (" active" if card.review_active else ""))


def register(ctx: ConsoleContext) -> None:
    @ui.page("/overlay", title="reStrike VTA overlay", reconnect_timeout=3600)
    async def overlay_page(client: Client, court: str = "") -> None:
        ui.add_css(_CSS)
        views: dict[str, _CardView] = {}
        order: list[str] = []
        shown: dict[str, MatchCard] = {}  # by node id: every card as last computed
        changed: set[str] = set()  # node ids whose match changed since the last update
        with ui.element("div").classes("ov-stage"):
            stack = ui.element("div").classes("ov-single" if court else "ov-list")

        def recompute(node_ids: set[str] | None) -> None:
            """The cards of these courts again (None: every court, as the master knows them now)."""
            now = dt.datetime.now(dt.UTC)
            if node_ids is None:
                shown.clear()
                found = ctx.master.courts()
            else:
                for node_id in node_ids:
                    shown.pop(node_id, None)
                found = [view for node_id in node_ids if (view := ctx.master.court(node_id)) is not None]
            shown.update(cards_by_node(found, now, court or None))

        def draw() -> None:
            nonlocal order
            cards = in_order(shown.values())
            if court:
                cards = cards[:1]
            keys = [card.court for card in cards]
            with stack:
                for card in cards:
                    if card.court not in views:
                        views[card.court] = _CardView()
                    views[card.court].show(card)
            for gone in set(views) - set(keys):
                stack.remove(views.pop(gone).root)
            if keys != order:
                for index, key in enumerate(keys):
                    views[key].root.move(stack, target_index=index)
                order = keys

        def changed_cards() -> None:
            """A push: the courts whose match changed since the last one."""
            recompute(set(changed))
            changed.clear()
            draw()

        def every_card() -> None:
            """The first draw and the timer: staleness and heartbeat news touch every card."""
            changed.clear()
            recompute(None)
            draw()

        def on_change(match: CourtMatch) -> None:
            changed.add(match.node_id)
            push.poke()

        every_card()
        push = Coalesced(changed_cards)
        client.on_delete(ctx.master.matches.subscribe(on_change))
        client.on_delete(push.close)
        ui.timer(STALE_CHECK_SECONDS, every_card, immediate=False)  # scores never wait for it: they are pushed
