"""``/events``: every court's events with the service's filters, a page at a time, live, CSV export.

Pages come from :class:`~master.services.events.EventService` by cursor (a day is never loaded
into the page); the query runs in a thread. On the first page, newest first, new events show
up by themselves: the page re-reads it every 2 s, and within a second when a court's match changes.
An event with an ``ivr_link`` (inside a replay clip) links to the IVR desk's player of that replay.
(Not every event changes a match, and the page is a database reader anyway; only the overlay
must never poll.)
``/events.csv`` streams the whole filtered result, page by page, under the same filters.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from nicegui import Client, ui
from pydantic import ValidationError

from master.console.context import ConsoleContext
from master.console.pages.ivr import player_link
from master.console.theme import frame
from master.services.events import CentralEvent, EventPage, EventQuery, EventService, InvalidCursor
from master.services.ivr import IvrDeskService
from shared.pss import Category
from shared.records import EXPORT_COLUMNS

__all__ = ["query_of", "register"]

PAGE_SIZE = 100
LIVE_SECONDS = 1.0
POLL_SECONDS = 2.0
_FILTERS = ("tournament", "day", "court", "match", "categories", "since", "until", "text")
_COLUMNS = [
    {"name": "time", "label": "time (UTC)", "field": "time", "align": "left"},
    {"name": "court", "label": "court", "field": "court", "align": "left"},
    {"name": "seq", "label": "seq", "field": "seq"},
    {"name": "code", "label": "code", "field": "code", "align": "left"},
    {"name": "cat", "label": "cat", "field": "cat", "align": "left"},
    {"name": "match", "label": "match", "field": "match", "align": "left"},
    {"name": "raw", "label": "protocol line", "field": "raw", "align": "left", "classes": "font-mono"},
    {"name": "problem", "label": "problem", "field": "problem", "align": "left", "classes": "text-negative"},
    {"name": "clip", "label": "clip", "field": "clip", "align": "left"},
]
_CLIP_CELL = '<q-td :props="props"><a v-if="props.value" :href="props.value" class="text-primary font-bold">▶ play</a></q-td>'


def query_of(values: dict[str, str]) -> EventQuery:
    """An event query from the page's filter fields or the export's URL parameters (raises ValidationError)."""
    categories = [c for c in (values.get("categories") or "").replace(" ", ",").split(",") if c]
    return EventQuery.model_validate({
        "tournament": values.get("tournament") or None,
        "day": values.get("day") or None,
        "court": values.get("court") or None,
        "match_number": values.get("match") or None,
        "categories": categories,
        "since": values.get("since") or None,
        "until": values.get("until") or None,
        "text": values.get("text") or None,
    })


def register(ctx: ConsoleContext, app: FastAPI) -> None:
    service = EventService(ctx.repository)
    replays = IvrDeskService(ctx.repository)

    def read_page(query: EventQuery, cursor: str | None) -> tuple[EventPage, dict[tuple[str, str], str]]:
        """A page of events, and the replay of each clip they link to (a thread: the database is synchronous)."""
        page = service.page(query, limit=PAGE_SIZE, cursor=cursor)
        links = [(e.record.node_id, e.record.ivr_link) for e in page.events if e.record.ivr_link]
        return page, replays.replays_of_clips(links)

    @app.get("/events.csv")
    def events_csv(request: Request) -> Response:
        try:
            query = query_of(dict(request.query_params))
            service.count(query)  # an unknown court, day or tournament is said now, not mid-file
        except (ValidationError, LookupError) as exc:
            return PlainTextResponse(f"Cannot export: {exc}", status_code=400)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        return StreamingResponse(
            _csv_lines(service, query), media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="events-{stamp}.csv"'},
        )

    @ui.page("/events")
    async def events_page(request: Request, client: Client) -> None:
        with frame(ctx.accounts, request, "Events"):
            values = {key: request.query_params.get(key, "") for key in _FILTERS}
            cursors: list[str | None] = [None]  # the cursor of each page shown so far
            state: dict[str, object] = {"dirty": False, "read": 0.0}

            with ui.row().classes("w-full items-end gap-3"):
                fields = {
                    "tournament": ui.input("Tournament", value=values["tournament"]).classes("w-48"),
                    "day": ui.input("Day", value=values["day"]).props('placeholder="N or NAME:N"').classes("w-28"),
                    "court": ui.input("Court", value=values["court"]).classes("w-36").mark("court-filter"),
                    "match": ui.input("Match", value=values["match"]).classes("w-24"),
                    "since": ui.input("From (UTC)", value=values["since"]).props('placeholder="2026-05-01T09:00"').classes("w-44"),
                    "until": ui.input("Until (UTC)", value=values["until"]).classes("w-44"),
                    "text": ui.input("Text in line", value=values["text"]).classes("w-40"),
                }
                categories = ui.select(
                    {c.value: f"{c.value} · {c.name.replace('_', ' ').lower()}" for c in Category},
                    multiple=True, label="Categories",
                    value=[c for c in values["categories"].split(",") if c in {x.value for x in Category}],
                ).classes("w-64").props("use-chips")
                ui.button("Apply", on_click=lambda: reload(first=True)).props("unelevated").mark("apply")
                export = ui.button("Export CSV", icon="download").props("outline").mark("export")
            status = ui.label().classes("text-slate-600")
            table = ui.table(columns=_COLUMNS, rows=[], row_key="key").classes("w-full").props("dense flat bordered")
            table.mark("events")
            table.add_slot("body-cell-clip", _CLIP_CELL)
            with ui.row().classes("gap-2"):
                newer = ui.button("Newer", icon="chevron_left", on_click=lambda: move(-1)).props("flat")
                older = ui.button("Older", icon="chevron_right", on_click=lambda: move(+1)).props("flat")

            def current() -> dict[str, str]:
                chosen = {key: str(field.value or "").strip() for key, field in fields.items()}
                chosen["categories"] = ",".join(categories.value or [])
                return chosen

            async def reload(first: bool = False) -> None:
                if first:
                    del cursors[1:]
                try:
                    query = query_of(current())
                    page, clips = await asyncio.to_thread(read_page, query, cursors[-1])
                except (ValidationError, LookupError, InvalidCursor) as exc:
                    status.set_text(f"Cannot show these events: {_short(exc)}")
                    status.classes(replace="text-negative font-bold")
                    return
                table.rows = [_row(event, clips) for event in page.events]
                table.update()
                state["next"] = page.next_cursor
                live = len(cursors) == 1 and query.newest_first
                status.set_text(
                    f"page {len(cursors)} · {len(page.events)} event(s)" + (" · live: new events appear at the top" if live else "")
                )
                status.classes(replace="text-slate-600")
                newer.set_enabled(len(cursors) > 1)
                older.set_enabled(page.next_cursor is not None)

            async def move(step: int) -> None:
                if step > 0 and state.get("next"):
                    cursors.append(state["next"])  # type: ignore[arg-type]
                elif step < 0 and len(cursors) > 1:
                    cursors.pop()
                await reload()

            def export_csv() -> None:
                from urllib.parse import urlencode

                ui.navigate.to(f"/events.csv?{urlencode({k: v for k, v in current().items() if v})}")

            export.on_click(export_csv)

            def wake(*_: object) -> None:
                state["dirty"] = True

            async def live() -> None:
                now = asyncio.get_running_loop().time()
                if len(cursors) == 1 and (state["dirty"] or now - float(state["read"]) >= POLL_SECONDS):  # type: ignore[arg-type]
                    state["dirty"], state["read"] = False, now
                    await reload()

            await reload(first=True)
            fields["court"].set_autocomplete(await ctx.async_court_names())  # typed, or picked from the courts known
            client.on_delete(ctx.master.matches.subscribe(wake))
            ui.timer(LIVE_SECONDS, live)


def _row(event: CentralEvent, clips: dict[tuple[str, str], str]) -> dict[str, object]:
    record = event.record
    replay = clips.get((record.node_id, record.ivr_link)) if record.ivr_link else None
    return {
        "key": f"{record.node_id}/{record.epoch}/{record.seq}",
        "time": record.timestamp[:23].replace("T", " "),
        "court": event.court or record.node_id,
        "seq": record.seq,
        "code": record.code,
        "cat": record.event_category,
        "match": record.match_number or "",
        "raw": record.raw,
        "problem": "" if record.valid else (record.error or "invalid"),
        "clip": player_link(replay) if replay else "",
    }


def _csv_lines(service: EventService, query: EventQuery) -> Iterator[str]:
    """The CSV, a page of events at a time (runs in Starlette's thread pool: the database is synchronous)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["court", "node_id", *EXPORT_COLUMNS], extrasaction="ignore")
    writer.writeheader()
    cursor: str | None = None
    while True:
        page = service.page(query, limit=1000, cursor=cursor)
        for event in page.events:
            writer.writerow({"court": event.court, **event.record.export_fields()})
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        problem = exc.errors()[0]
        return f"{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}"
    return str(exc)
