"""``/days``: tournaments and their days; activate a day on every court, finish it; a day's report.

Planning goes through :mod:`master.services.days` (on the master's database thread), activation
and finishing through the master's :class:`~master.control.Controller` (``activate_day`` /
``finish_day``), with each court's result shown as it arrives. Which courts work under which day
is read from their heartbeats (memory, every second). ``/days?day=<uuid>`` shows that day's report
(:mod:`master.services.day_report`): events per court and category and the replays' review
times as charts, the numbers in a table, and each court's YouTube chapters file at
``/days/<day>/chapters/<node>.txt``. While courts work under the day shown, its report is read
again every few seconds and changed in place (a new court or the first review draws it anew).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from nicegui import Client, ui
from nicegui.events import GenericEventArguments
from pydantic import ValidationError

from master.console.context import ConsoleContext
from master.console.results import async_command
from master.console.theme import frame
from master.services.day_report import CATEGORIES, CourtReport, DayReport, court_chapters, day_report
from master.services.days import NewDay, NewTournament, activation, add_day, courts_on_days, create_tournament, next_day
from master.services.tournaments import DayView, TournamentView, tournaments
from shared.chapters import ChapterPlan, render
from shared.commands import Action
from shared.pss import Category

__all__ = ["chapters_path", "register"]

LIVE_SECONDS = 1.0
#: The report of a day courts work under is read again this often (database queries: not every second).
REPORT_SECONDS = 10.0
#: Categories the events chart starts with hidden (they dwarf the scoring).
_HIDDEN = {"R", "O"}
#: Room on each side of the reviews' time axis, so a lone review is not drawn on the edge.
_CHART_MARGIN_MS = 10 * 60_000
#: The seven categories' colours in the charts: points warm, hit level and referee apart, other grey.
_COLOURS = {"K": "#0f766e", "P": "#f59e0b", "H": "#dc2626", "TH": "#9333ea", "TB": "#2563eb", "R": "#475569",
            "O": "#cbd5e1"}


def chapters_path(day_uuid: str, node_id: str) -> str:
    """Where a court's chapters file of a day downloads."""
    return f"/days/{quote(day_uuid, safe='')}/chapters/{quote(node_id, safe='')}.txt"


def register(ctx: ConsoleContext, app: FastAPI) -> None:
    @app.get("/days/{day_uuid}/chapters/{node_id}.txt")
    async def chapters_file(day_uuid: str, node_id: str) -> Response:
        plan: ChapterPlan = await asyncio.to_thread(court_chapters, ctx.repository, day_uuid, node_id, dt.datetime.now(dt.UTC))
        if not plan.valid:
            return PlainTextResponse(f"No YouTube chapters for {node_id} on this day: {plan.problem}", status_code=404)
        return PlainTextResponse(render(plan), headers={
            "Content-Disposition": f'attachment; filename="chapters-{node_id}-{day_uuid[:8]}.txt"'})

    @ui.page("/days")
    async def days_page(request: Request, client: Client) -> None:
        principal = request.state.principal
        chosen = request.query_params.get("day")
        with frame(ctx.accounts, request, "Tournament days"):
            page = _DaysPage(ctx, principal.username, chosen)
            await page.async_build()
            client.on_delete(page.stop)


class _DaysPage:
    """One director's view of the days: the plan (re-read after each change), the courts on each day
    (from memory, every second), the chosen day's report."""

    def __init__(self, ctx: ConsoleContext, username: str, chosen: str | None) -> None:
        self.ctx = ctx
        self.username = username
        self.chosen = chosen
        self.known: list[TournamentView] = []
        self.on_day: dict[str, list[tuple[str, str]]] = {}
        self.timers: list[ui.timer] = []
        self.drawn: _DrawnReport | None = None
        self.drawing = 0  # reports asked for so far: only the latest one is drawn
        with ui.row().classes("w-full items-start gap-6 no-wrap"):
            with ui.column().classes("w-[33rem] shrink-0 gap-4"):
                self._new_tournament()
                self.plan_view = ui.column().classes("w-full gap-4").mark("tournaments")
                self.results = ui.column().classes("w-full gap-2").mark("command-results")
            self.report_view = ui.column().classes("grow min-w-0 gap-4").mark("report")

    async def async_build(self) -> None:
        await self.async_reload()
        self.timers = [ui.timer(LIVE_SECONDS, self._live), ui.timer(REPORT_SECONDS, self._report_live, immediate=False)]

    def stop(self) -> None:
        for timer in self.timers:
            timer.cancel()

    # --- the plan ---------------------------------------------------------------------------------

    async def async_reload(self) -> None:
        self.known = await asyncio.to_thread(tournaments, self.ctx.repository)
        self.on_day = self._courts_on_days()
        if self.chosen is None:  # the day courts work under now, else the latest tournament's last day
            days = [d for t in self.known for d in t.days]
            latest = self.known[0].days[-1].uuid if self.known and self.known[0].days else None
            self.chosen = next((d.uuid for d in days if d.uuid in self.on_day), latest)
        self._plan()
        await self._report()

    async def _db(self, write: Callable[..., object], *args: object) -> object:
        """A planning write on the master's database thread (the writer), with the repository to check against."""
        master = self.ctx.master
        if master.db is None or master.store is None:
            raise ValueError("the master's database is not running")
        return await master.db.call(write, master.store, self.ctx.repository, *args)

    def _courts_on_days(self) -> dict[str, list[tuple[str, str]]]:
        links = self.ctx.master.links.values()
        return courts_on_days(link.last_heartbeat for link in links if link.online and link.last_heartbeat is not None)

    def _live(self) -> None:
        now = self._courts_on_days()
        if now != self.on_day:
            self.on_day = now
            self._plan()

    def _new_tournament(self) -> None:
        with ui.card().classes("w-full").mark("new-tournament"):
            ui.label("New tournament").classes("text-lg font-bold")
            name = ui.input("Name").classes("w-full").mark("tournament-name")
            location = ui.input("Location").classes("w-full").mark("tournament-location")
            with ui.row().classes("w-full gap-3 no-wrap"):
                start = ui.input("First day").props("type=date stack-label").classes("grow").mark("tournament-start")
                end = ui.input("Last day").props("type=date stack-label").classes("grow").mark("tournament-end")

            async def create() -> None:
                try:
                    new = NewTournament(name=name.value or "", location=location.value or None,
                                        start_date=start.value or None, end_date=end.value or None)
                    await self._db(create_tournament, new)
                except (ValidationError, ValueError) as exc:
                    ui.notify(f"Not created: {_short(exc)}", type="negative")
                    return
                ui.notify(f"{new.name} created: add its days below", type="positive")
                name.value = location.value = ""
                await self.async_reload()

            ui.button("Create tournament", icon="add", on_click=create).props("unelevated no-caps").mark("create-tournament")

    def _plan(self) -> None:
        self.plan_view.clear()
        with self.plan_view:
            if not self.known:
                ui.label("No tournament yet: create one above, or activate one at a court.").classes(
                    "text-slate-600 text-lg").mark("no-tournaments")
            for tournament in self.known:
                self._tournament(tournament)

    def _tournament(self, tournament: TournamentView) -> None:
        with ui.card().classes("w-full gap-2").mark(f"tournament-{_slug(tournament.name)}"):
            ui.label(tournament.name).classes("text-xl font-bold")
            facts = [tournament.location or "", _dates(tournament.start_date, tournament.end_date)]
            if any(facts):
                ui.label(" · ".join(f for f in facts if f)).classes("text-slate-600")
            for day in tournament.days:
                self._day(tournament, day)
            number, date = next_day(tournament.start_date, [(d.number, d.date) for d in tournament.days],
                                    dt.datetime.now(dt.UTC).date())
            with ui.row().classes("w-full items-center gap-2 pt-1"):
                day_date = ui.input(f"Day {number}", value=date.isoformat()).props("type=date dense stack-label").classes(
                    "w-44").mark(f"day-date-{_slug(tournament.name)}")

                async def add() -> None:
                    try:
                        await self._db(add_day, NewDay(tournament_uuid=tournament.uuid, day_number=number,
                                                       date=day_date.value))
                    except (ValidationError, ValueError, LookupError) as exc:
                        ui.notify(f"Day not added: {_short(exc)}", type="negative")
                        return
                    await self.async_reload()

                ui.button(f"Add day {number}", icon="event", on_click=add).props("outline no-caps").mark(
                    f"add-day-{_slug(tournament.name)}")

    def _day(self, tournament: TournamentView, day: DayView) -> None:
        courts = self.on_day.get(day.uuid, [])
        shown = day.uuid == self.chosen
        frame_classes = "border-l-4 " + ("border-green-600 bg-green-50" if courts else "border-slate-300")
        with ui.column().classes(f"w-full gap-1 pl-3 py-1 {frame_classes}").mark(f"day-{_slug(tournament.name)}-{day.number}"):
            with ui.row().classes("w-full items-center gap-2"):
                ui.label(f"Day {day.number}").classes("text-lg font-bold")
                ui.label(day.date.strftime("%a %d %b %Y") if day.date else "no date").classes("text-slate-600")
                ui.space()
                ui.label(f"{_count(day.events, 'event')} · {_count(day.matches, 'match')}").classes("text-slate-600")
            with ui.row().classes("w-full items-center gap-2"):
                if courts:
                    ui.icon("sensors").classes("text-green-700 text-xl")
                    ui.label("Active on " + ", ".join(name for name, _ in courts)).classes(
                        "text-green-800 font-bold").mark("active-courts")
                else:
                    ui.label("not active on any court").classes("text-slate-500").mark("active-courts")
            with ui.row().classes("w-full gap-2"):
                ui.button("Activate on all courts", icon="play_arrow",
                          on_click=lambda: self._activate(tournament, day)).props("unelevated no-caps color=positive").mark(
                    f"activate-{_slug(tournament.name)}-{day.number}")
                finish = ui.button("Finish", icon="stop", on_click=lambda: self._confirm_finish(tournament, day, courts)).props(
                    "outline no-caps color=negative").mark(f"finish-{_slug(tournament.name)}-{day.number}")
                finish.set_enabled(bool(courts))
                ui.button("Report", icon="bar_chart", on_click=lambda: self._show(day.uuid)).props(
                    ("unelevated" if shown else "flat") + " no-caps color=primary").mark(
                    f"report-{_slug(tournament.name)}-{day.number}")

    # --- commands ---------------------------------------------------------------------------------

    async def _activate(self, tournament: TournamentView, day: DayView) -> None:
        try:
            args = await asyncio.to_thread(activation, self.ctx.repository, day.uuid, dt.datetime.now(dt.UTC).date())
        except LookupError as exc:
            ui.notify(str(exc), type="negative")
            return
        await self._send(Action.ACTIVATE_DAY, args.model_dump(mode="json"), None,
                         f"Activate {tournament.name} day {day.number}")

    def _confirm_finish(self, tournament: TournamentView, day: DayView, courts: list[tuple[str, str]]) -> None:
        with ui.dialog() as dialog, ui.card().mark("confirm-finish-dialog"):
            ui.label(f"Finish {tournament.name} day {day.number}?").classes("text-lg font-bold")
            ui.label("Ends the day on " + ", ".join(name for name, _ in courts)
                     + ": their events carry no day until one is activated, and their OBS sessions end.")
            with ui.row().classes("w-full justify-end"):
                ui.button("Cancel", on_click=dialog.close).props("flat no-caps")

                async def finish() -> None:
                    dialog.close()
                    await self._send(Action.FINISH_DAY, {}, [node_id for _, node_id in courts],
                                     f"Finish {tournament.name} day {day.number}")

                ui.button("Finish the day", on_click=finish).props("unelevated no-caps color=negative").mark("confirm-finish")
        dialog.open()

    async def _send(self, action: Action, args: dict[str, object], courts: list[str] | None, title: str) -> None:
        """The command with each court's result as it arrives (the console's one way), then the plan again."""
        result = await async_command(
            self.ctx.master.control, self.results, title, courts,
            lambda control, node_ids, on_result: control.async_send(action, args, courts=node_ids,
                                                                    issued_by=self.username, on_result=on_result),
            keep=3,
        )
        if result is not None:
            await self.async_reload()

    # --- the report -------------------------------------------------------------------------------

    async def _show(self, day_uuid: str) -> None:
        self.chosen = day_uuid
        ui.navigate.history.replace(f"/days?{urlencode({'day': day_uuid})}")
        self._plan()
        await self._report()

    async def _report(self, read: tuple[DayReport, dict[str, ChapterPlan]] | None = None) -> None:
        """Draw the chosen day's report (``read``: the chosen day's, read already). The last call wins:
        one still reading the database when another starts (a click during the live refresh, a reload
        after a command) draws nothing."""
        self.drawing += 1
        mine = self.drawing
        found = next(((t, d) for t in self.known for d in t.days if d.uuid == self.chosen), None)
        if read is None and found is not None:
            read = await self._read_report(found[1].uuid)
        if mine != self.drawing:
            return
        self.report_view.clear()
        self.drawn = None
        if found is None or read is None:
            with self.report_view:
                text = (f"The master knows no day {self.chosen}." if self.chosen
                        else "Create a tournament and a day; its report shows here.")
                ui.label(text).classes("text-slate-600 text-lg").mark("report-empty")
            return
        tournament, day = found
        report, plans = read
        with self.report_view:
            with ui.row().classes("w-full items-baseline gap-3"):
                ui.label(f"{tournament.name} · day {day.number}").classes("text-2xl font-bold").mark("report-title")
                ui.label(day.date.strftime("%A %d %B %Y") if day.date else "").classes("text-slate-600 text-lg")
            if not report.courts:
                ui.label("No court has stored anything under this day yet.").classes("text-slate-600 text-lg").mark(
                    "report-empty")
                self.drawn = _DrawnReport(day.uuid, _report_layout(report))
                return
            total = report.reviews
            summary = ui.label(_summary(report)).classes("text-lg text-slate-800").mark("report-summary")
            with ui.row().classes("w-full gap-4 no-wrap"):
                with ui.card().classes("w-1/2 min-w-0"):
                    ui.label("Events per court and category").classes("text-lg font-bold")
                    categories = ui.echart(_category_chart(report)).classes("w-full").style(
                        f"height: {max(288, 120 + 32 * len(report.courts))}px").mark("category-chart")
                    categories.on("chart:legendselectchanged", partial(_keep_legend, categories))
                with ui.card().classes("w-1/2 min-w-0"):
                    ui.label("Reviews: seconds the match stood still").classes("text-lg font-bold")
                    reviews = None
                    if total.count:
                        reviews = ui.echart(_review_chart(report)).classes("w-full h-72").mark("review-chart")
                    else:
                        ui.label("No review has ended at a court on this day yet.").classes("text-slate-600 text-lg")
            rows = [_report_row(c, plans[c.node_id], day.uuid) for c in report.courts]
            tables = [
                ui.table(columns=_CATEGORY_COLUMNS, rows=rows, row_key="node_id").classes("w-full").props(
                    "flat bordered dense").mark("category-table"),
                ui.table(columns=_REPLAY_COLUMNS, rows=rows, row_key="node_id").classes("w-full").props(
                    "flat bordered wrap-cells").mark("replay-table"),
            ]
            tables[1].add_slot("body-cell-chapters", _CHAPTERS_CELL)
        self.drawn = _DrawnReport(day.uuid, _report_layout(report), summary, categories, reviews, tables)

    async def _read_report(self, day_uuid: str) -> tuple[DayReport, dict[str, ChapterPlan]]:
        report: DayReport = await asyncio.to_thread(day_report, self.ctx.repository, day_uuid)
        now = dt.datetime.now(dt.UTC)
        plans = {c.node_id: await asyncio.to_thread(court_chapters, self.ctx.repository, day_uuid, c.node_id, now)
                 for c in report.courts}
        return report, plans

    async def _report_live(self) -> None:
        """The report of a day courts work under now, read again: changed in place, or drawn anew when its
        layout changed (a court's first event, the first review)."""
        drawn = self.drawn
        if drawn is None or drawn.day_uuid not in self.on_day:
            return  # no day shown, or one that no court adds to now
        drawing = self.drawing
        report, plans = await self._read_report(drawn.day_uuid)
        if self.drawn is not drawn or self.drawing != drawing:
            return  # another report is being drawn, or was, meanwhile
        if _report_layout(report) != drawn.layout or drawn.summary is None or drawn.categories is None:
            await self._report((report, plans))  # the chosen day's: another choice would have changed `drawing`
            return
        drawn.summary.set_text(_summary(report))
        drawn.categories.options.update(_category_chart(report, drawn.categories.options["legend"]["selected"]))
        drawn.categories.update()
        if drawn.reviews is not None:
            drawn.reviews.options.update(_review_chart(report))
            drawn.reviews.update()
        rows = [_report_row(c, plans[c.node_id], drawn.day_uuid) for c in report.courts]
        for table in drawn.tables:
            if table.rows != rows:
                table.rows = rows
                table.update()


@dataclass
class _DrawnReport:
    """The report on the page: its day, what shapes it, and what a live refresh changes in place."""

    day_uuid: str
    layout: tuple[object, ...]
    summary: ui.label | None = None
    categories: ui.echart | None = None
    reviews: ui.echart | None = None
    tables: list[ui.table] = field(default_factory=list)


def _keep_legend(chart: ui.echart, event: GenericEventArguments) -> None:
    """The categories the director shows or hides stay so when the live report redraws the chart."""
    selected = event.args.get("selected") if isinstance(event.args, dict) else None
    if isinstance(selected, dict):
        chart.options["legend"]["selected"] = {str(name): bool(shown) for name, shown in selected.items()}


def _report_layout(report: DayReport) -> tuple[object, ...]:
    """What places the report's parts: its courts and whether a review has been timed."""
    return tuple(c.node_id for c in report.courts), report.reviews.count > 0


def _summary(report: DayReport) -> str:
    total = report.reviews
    return (f"{_count(sum(report.categories.values()), 'event')} · {_count(sum(c.replays for c in report.courts), 'replay')} · "
            + (f"review median {total.median_s:g} s, longest {total.longest_s:g} s" if total.count else "no review timed yet"))


_CATEGORY_COLUMNS = [
    {"name": "court", "label": "court", "field": "court", "align": "left", "classes": "font-bold whitespace-nowrap"},
    *({"name": c.value, "label": f"{c.value} · {c.name.replace('_', ' ').lower()}", "field": c.value} for c in Category),
    {"name": "events", "label": "all events", "field": "events", "classes": "font-bold"},
]
_REPLAY_COLUMNS = [
    {"name": "court", "label": "court", "field": "court", "align": "left", "classes": "font-bold whitespace-nowrap"},
    {"name": "replays", "label": "replays", "field": "replays"},
    {"name": "asked", "label": "asked by", "field": "asked", "align": "left"},
    {"name": "results", "label": "results", "field": "results", "align": "left"},
    {"name": "review", "label": "review (median / longest)", "field": "review"},
    {"name": "desk", "label": "IVR desk", "field": "desk", "align": "left"},
    {"name": "chapters", "label": "YouTube chapters", "field": "chapters", "align": "left"},
]
_CHAPTERS_CELL = """
<q-td :props="props">
  <a v-if="props.row.chapters_url" :href="props.row.chapters_url" download class="text-primary font-bold">
    {{ props.value }}</a>
  <span v-else class="text-slate-500" :title="props.row.chapters_problem">{{ props.value }}</span>
</q-td>
"""


def _report_row(court: CourtReport, plan: ChapterPlan, day_uuid: str) -> dict[str, object]:
    reviews = court.reviews
    desk = ", ".join(f"{n} {state}" for state, n in sorted(court.desk.items()))
    if court.desk_times.median_s is not None:
        desk += f" · reviewed after {_duration(court.desk_times.median_s)}"
    return {
        "node_id": court.node_id, "court": court.court, "events": court.events, **court.categories,
        "replays": court.replays,
        "asked": ", ".join(f"{who} {n}" for who, n in sorted(court.challenges.items())) or "–",
        "results": ", ".join(f"{what} {n}" for what, n in sorted(court.results.items())) or "–",
        "review": f"{reviews.median_s:g} / {reviews.longest_s:g} s" if reviews.median_s is not None else "–",
        "desk": desk or "–",
        "chapters": f"{len(plan.chapters)} chapters ⤓" if plan.valid else "none",
        "chapters_url": chapters_path(day_uuid, court.node_id) if plan.valid else "",
        "chapters_problem": plan.problem or "",
    }


def _category_chart(report: DayReport, selected: dict[str, bool] | None = None) -> dict[str, object]:
    """Stacked bars, a bar per court (court names readable for 12 courts): where the day's scoring
    happened, at a glance. Referee matters
    (the clock among them) and other messages outnumber the scoring many times over: they start
    hidden, a click on their legend entry shows them (``selected``: the director's choice so far)."""
    names = {c.value: f"{c.value} {c.name.replace('_', ' ').lower()}" for c in Category}
    return {
        "animation": False,
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "legend": {"top": 0, "textStyle": {"fontSize": 14}, "itemGap": 12,
                   "selected": selected or {names[c]: c not in _HIDDEN for c in CATEGORIES}},
        "grid": {"left": 8, "right": 24, "top": 88, "bottom": 8, "containLabel": True},
        "yAxis": {"type": "category", "inverse": True, "data": [c.court for c in report.courts],
                  "axisLabel": {"fontSize": 14, "interval": 0, "fontWeight": "bold"}},
        "xAxis": {"type": "value", "minInterval": 1, "axisLabel": {"fontSize": 13}},
        "series": [
            {"name": names[cat], "type": "bar", "stack": "events", "data": [c.categories[cat] for c in report.courts],
             "itemStyle": {"color": _COLOURS[cat]}}
            for cat in CATEGORIES
        ],
    }


def _review_chart(report: DayReport) -> dict[str, object]:
    """Each review as a point at its time of day, a series per court: long stops, and when, stand out."""
    times = [r.at_ms for c in report.courts for r in c.review_list]
    return {
        "animation": False,
        "tooltip": {"trigger": "item"},
        "legend": {"top": 0, "textStyle": {"fontSize": 14}},
        "grid": {"left": 48, "right": 24, "top": 40, "bottom": 32},
        "xAxis": {"type": "time", "min": min(times) - _CHART_MARGIN_MS, "max": max(times) + _CHART_MARGIN_MS,
                  "axisLabel": {"fontSize": 13, "formatter": "{HH}:{mm}", "hideOverlap": True}},
        "yAxis": {"type": "value", "name": "seconds", "min": 0, "minInterval": 1, "axisLabel": {"fontSize": 13}},
        "series": [
            {"name": c.court, "type": "scatter", "symbolSize": 14, "data": [[r.at_ms, r.seconds] for r in c.review_list]}
            for c in report.courts if c.review_list
        ],
    }


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}" + ("" if number == 1 else "es" if thing.endswith("ch") else "s")


def _duration(seconds: float) -> str:
    return f"{seconds:g} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _dates(start: dt.date | None, end: dt.date | None) -> str:
    if start and end and start != end:
        return f"{start:%d %b} – {end:%d %b %Y}"
    return f"{(start or end):%d %b %Y}" if (start or end) else ""


def _slug(name: str) -> str:
    """A name as a marker (NiceGUI splits markers at spaces): ``Zagreb Open`` -> ``zagreb-open``."""
    return "-".join(name.lower().split())


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        return f"{where}: {problem['msg']}" if where else problem["msg"]
    return str(exc)
