"""``/ivr``: the IVR desk, every court's replays with their review; ``/clips/<replay>`` plays a clip in the browser.

The list and the reviews go through :class:`~master.services.ivr.IvrDeskService` (a thread: the
database is synchronous). Opening a replay fetches its clip from the court over the master's
link (:meth:`~master.clips.ClipFetcher.fetch_playable`: on demand, cached, remuxed to MP4 without
re-encoding) with the bytes received shown as they arrive; then the ``<video>`` element plays
``/clips/<replay>``, a file response with HTTP Range (Chromium seeks with it). An offline court
or a clip gone from it is said in plain words, on the page and by the route.
``/ivr?replay=<uuid>`` opens one replay (the events page links its clips there). New replays
appear by themselves on the first page (re-read every few seconds, paused while rows are selected).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, PlainTextResponse, Response
from nicegui import Client, ui
from pydantic import ValidationError

from master.clips import ClipError, ClipNotFound, ClipRefused, CourtOffline, RemuxFailed
from master.console.context import ConsoleContext
from master.console.theme import frame
from master.services.ivr import InvalidCursor, IvrDeskService, IvrPage, IvrQuery, Replay, ReviewState

__all__ = ["clip_problem", "player_link", "register"]

PAGE_SIZE = 100
REFRESH_SECONDS = 3.0
_STATE_LABELS = {ReviewState.PENDING: "Pending", ReviewState.REVIEWED: "Reviewed", ReviewState.RESOLVED: "Resolved"}
_COLUMNS = [
    {"name": "time", "label": "time (UTC)", "field": "time", "align": "left"},
    {"name": "court", "label": "court", "field": "court", "align": "left"},
    {"name": "match", "label": "match", "field": "match", "align": "left"},
    {"name": "athletes", "label": "blue / red", "field": "blue", "align": "left"},
    {"name": "side", "label": "challenge", "field": "side", "align": "left"},
    {"name": "state", "label": "review", "field": "state", "align": "left"},
    {"name": "clip", "label": "clip", "field": "clip", "align": "left"},
]
#: Every cell of the replay open in the player is tinted, so the director sees which row the player shows.
_TD = """<q-td :props="props" :class="{'bg-amber-2': props.row.open}">"""
#: Two lines per cell where a director reads two facts together; the row dicts keep each fact in its own field.
_SLOTS = {
    "body-cell": _TD + "{{ props.value }}</q-td>",
    "body-cell-time": _TD + '<div class="font-semibold">{{ props.value }}</div>'
                      '<div class="text-xs text-slate-500">{{ props.row.date }}</div></q-td>',
    "body-cell-athletes": _TD + '<div class="text-blue-800 font-semibold">{{ props.row.blue }}</div>'
                          '<div class="text-red-800 font-semibold">{{ props.row.red }}</div></q-td>',
    "body-cell-side": _TD + '<div class="font-bold" '
                      ':class="{BLUE: \'text-blue-800\', RED: \'text-red-800\'}[props.value]">{{ props.value }}</div>'
                      '<div class="text-slate-600">{{ props.row.result }}</div></q-td>',
    "body-cell-state": _TD + """
  <q-badge :color="{pending: 'amber-8', reviewed: 'blue-8', resolved: 'green-8'}[props.value]"
           class="text-sm px-2 py-1 uppercase">{{ props.value }}</q-badge>
  <div class="text-xs text-slate-600">{{ props.row.reviewer }}</div>
</q-td>""",
    "body-cell-clip": _TD + '<span :class="props.row.has_clip ? \'text-primary font-bold\' : '
                      '\'text-slate-400\'">{{ props.value }}</span></q-td>',
}


def player_link(uuid: str) -> str:
    """Where a replay's clip plays: the desk with that replay open."""
    return f"/ivr?{urlencode({'replay': uuid})}"


def clip_problem(exc: ClipError, court: str) -> tuple[int, str]:
    """An HTTP status and an operator's sentence for a clip that cannot be played (page and route say the same)."""
    if isinstance(exc, CourtOffline):
        return 503, f"{court} is offline: the clip stays on the court laptop and plays here once the court is back online."
    if isinstance(exc, ClipNotFound):
        return 404, f"The clip is gone from {court} (deleted or moved on the court laptop)."
    if isinstance(exc, ClipRefused):
        return 403, f"{court} refuses to send this file: it is not in its replay clip folder."
    if isinstance(exc, RemuxFailed):
        return 500, f"The clip arrived but cannot be made playable: {exc}"
    return 502, f"The clip could not be fetched from {court}: {exc}"


def register(ctx: ConsoleContext, app: FastAPI) -> None:
    service = IvrDeskService(ctx.repository)

    @app.get("/clips/{uuid}")
    async def clip(uuid: str) -> Response:
        replay = await asyncio.to_thread(service.replay, uuid)
        if replay is None or replay.clip_path is None:
            return PlainTextResponse("No such replay clip at the master.", status_code=404)
        clips = ctx.master.clips
        if clips is None:
            return PlainTextResponse("The master is not linked to the courts yet.", status_code=503)
        try:
            path = await clips.fetch_playable(replay.node_id, replay.clip_path)
        except ClipError as exc:
            status, text = clip_problem(exc, replay.court or replay.node_id)
            return PlainTextResponse(text, status_code=status)
        return FileResponse(path, media_type="video/mp4")  # answers Range requests (206) itself

    @ui.page("/ivr")
    async def ivr_page(request: Request, client: Client) -> None:
        reviewer: str = request.state.principal.username
        with frame(ctx.accounts, request, "IVR desk"):
            cursors: list[str | None] = [None]
            state: dict[str, object] = {"next": None, "open": None}

            with ui.row().classes("w-full items-end gap-3"):
                court = ui.input("Court", value=request.query_params.get("court", "")).classes("w-36").mark("court-filter")
                day = ui.input("Day", value=request.query_params.get("day", "")).props('placeholder="N or NAME:N"')
                day.classes("w-32")
                shown_state = ui.toggle(
                    {"": "All", **{s.value: label for s, label in _STATE_LABELS.items()}},
                    value=request.query_params.get("state", ""),
                ).props("no-caps unelevated toggle-color=primary").mark("state-filter")
                ui.button("Apply", on_click=lambda: reload(first=True)).props("unelevated").mark("apply")
            status = ui.label().classes("text-slate-600")
            with ui.row().classes("w-full items-start gap-4 no-wrap"):
                with ui.column().classes("grow gap-2 min-w-0"):
                    with ui.row().classes("items-center gap-2"):
                        ui.label("Selected:").classes("text-slate-700")
                        for s in ReviewState:
                            ui.button(f"Mark {_STATE_LABELS[s].lower()}", on_click=lambda _, s=s: bulk(s)).props(
                                "outline dense no-caps").mark(f"bulk-{s.value}")
                    table = ui.table(columns=_COLUMNS, rows=[], row_key="uuid", selection="multiple")
                    table.classes("w-full text-base").props("flat bordered").mark("replays")
                    for slot, template in _SLOTS.items():
                        table.add_slot(slot, template)
                    table.on("rowClick", lambda e: open_replay(e.args[1]["uuid"]))
                    with ui.row().classes("gap-2"):
                        newer = ui.button("Newer", icon="chevron_left", on_click=lambda: move(-1)).props("flat")
                        older = ui.button("Older", icon="chevron_right", on_click=lambda: move(+1)).props("flat")
                panel = ui.card().classes("w-[460px] shrink-0 gap-3 sticky top-20").mark("player")

            def show_empty_panel() -> None:
                panel.clear()
                with panel:
                    ui.label("Click a replay to play its clip and review it.").classes("text-lg text-slate-600")

            def query() -> IvrQuery:
                chosen = str(shown_state.value or "")
                return IvrQuery(court=court.value.strip() or None, day=day.value.strip() or None,
                                states=(ReviewState(chosen),) if chosen else ())

            async def reload(first: bool = False) -> None:
                if first:
                    del cursors[1:]
                try:
                    page: IvrPage = await asyncio.to_thread(service.page, query(), limit=PAGE_SIZE, cursor=cursors[-1])
                except (ValidationError, LookupError, InvalidCursor) as exc:
                    status.set_text(f"Cannot show these replays: {exc}")
                    status.classes(replace="text-negative font-bold")
                    return
                rows = [_row(replay, state["open"]) for replay in page.replays]
                if rows != table.rows:
                    table.rows = rows
                    table.update()
                state["next"] = page.next_cursor
                pending = sum(r.review.state is ReviewState.PENDING for r in page.replays)
                status.set_text(f"page {len(cursors)} · {len(page.replays)} replay(s), {pending} pending")
                status.classes(replace="text-slate-600")
                newer.set_enabled(len(cursors) > 1)
                older.set_enabled(page.next_cursor is not None)

            async def move(step: int) -> None:
                if step > 0 and state["next"]:
                    cursors.append(state["next"])  # type: ignore[arg-type]
                elif step < 0 and len(cursors) > 1:
                    cursors.pop()
                await reload()

            async def bulk(new_state: ReviewState) -> None:
                uuids = [row["uuid"] for row in table.selected]
                if not uuids:
                    ui.notify("Select replays first (the boxes at the left of the rows).", type="warning")
                    return
                try:
                    written = await asyncio.to_thread(service.review, uuids, new_state, reviewer)
                except (LookupError, ValueError) as exc:
                    ui.notify(f"Not saved: {exc}", type="negative")
                    return
                ui.notify(f"{len(written)} replay(s) marked {new_state.value}", type="positive")
                table.selected.clear()
                await reload()
                if state["open"] in written:
                    await open_replay(str(state["open"]), fetch=False)

            async def open_replay(uuid: str, fetch: bool = True) -> None:
                replay = await asyncio.to_thread(service.replay, uuid)
                if replay is None:
                    ui.notify(f"No replay {uuid} at the master.", type="negative")
                    return
                state["open"] = uuid
                for row in table.rows:
                    row["open"] = row["uuid"] == uuid
                table.update()
                video = render_panel(replay, fetch)
                if fetch and video is not None:
                    await load_clip(replay, video)

            def render_panel(replay: Replay, fetch: bool) -> ui.video | None:
                """The replay's facts, its player and its review form; the player is kept when only the review changed."""
                court_name = replay.court or replay.node_id
                if fetch:
                    panel.clear()
                    with panel:
                        ui.label(_title(replay)).classes("text-xl font-bold")
                        with ui.row().classes("items-baseline gap-2 text-lg"):
                            ui.label(replay.blue or "?").classes("text-blue-800 font-semibold")
                            ui.label("vs")
                            ui.label(replay.red or "?").classes("text-red-800 font-semibold")
                        ui.label(_facts(replay)).classes("text-slate-700")
                        state["message"] = ui.label().classes("text-base").mark("clip-message")
                        state["progress"] = ui.linear_progress(value=0, show_value=False).props("size=10px")
                        video = ui.video("", controls=True, autoplay=True, muted=True).classes("w-full").mark("clip")
                        video.set_visibility(False)
                        state["form"] = ui.column().classes("w-full gap-2")
                else:
                    video = None
                form = state["form"]
                assert isinstance(form, ui.column)
                form.clear()
                with form:
                    choice = ui.toggle({s.value: _STATE_LABELS[s] for s in ReviewState}, value=replay.review.state.value)
                    choice.props("no-caps spread unelevated toggle-color=primary").classes("w-full").mark("review-state")
                    notes = ui.textarea("Notes", value=replay.review.notes).classes("w-full").props("outlined autogrow")
                    notes.mark("review-notes")

                    async def save() -> None:
                        try:
                            await asyncio.to_thread(service.review, [replay.uuid], ReviewState(choice.value), reviewer,
                                                    notes.value or "")
                        except (LookupError, ValueError) as exc:
                            ui.notify(f"Not saved: {exc}", type="negative")
                            return
                        ui.notify(f"Review of {court_name} match {replay.match_number or '?'} saved", type="positive")
                        await reload()
                        await open_replay(replay.uuid, fetch=False)

                    with ui.row().classes("items-center gap-3"):
                        ui.button("Save review", icon="save", on_click=save).props("unelevated").mark("save-review")
                        ui.label(_reviewed(replay)).classes("text-slate-600").mark("reviewed-by")
                return video

            async def load_clip(replay: Replay, video: ui.video) -> None:
                message, progress = state["message"], state["progress"]
                assert isinstance(message, ui.label) and isinstance(progress, ui.linear_progress)
                court_name = replay.court or replay.node_id
                clips = ctx.master.clips
                if clips is None:
                    progress.set_visibility(False)
                    message.set_text("The master is not linked to the courts yet.")
                    return
                if replay.clip_path is None:
                    progress.set_visibility(False)
                    message.set_text(f"No clip: {court_name} saved none for this replay"
                                     + (f" ({replay.reason})." if replay.reason else "."))
                    return
                message.set_text(f"Fetching the clip from {court_name}…")

                def on_progress(here: int, total: int) -> None:
                    progress.set_value(here / total if total else 1.0)
                    message.set_text(f"Fetching the clip from {court_name}: {here / 2**20:.1f} of {total / 2**20:.1f} MB")

                try:
                    await clips.fetch_playable(replay.node_id, replay.clip_path, on_progress)
                except ClipError as exc:
                    if state["open"] == replay.uuid:
                        progress.set_visibility(False)
                        message.set_text(clip_problem(exc, court_name)[1])
                        message.classes(replace="text-base text-negative font-bold")
                    return
                if state["open"] != replay.uuid:
                    return  # another replay was opened meanwhile
                progress.set_visibility(False)
                message.set_visibility(False)
                video.set_source(f"/clips/{replay.uuid}")
                video.set_visibility(True)

            async def refresh() -> None:
                """New replays on the first page; not while replays are selected, so rows never move under a click."""
                if len(cursors) == 1 and not table.selected:
                    await reload()

            show_empty_panel()
            await reload(first=True)
            court.set_autocomplete(await ctx.async_court_names())  # typed, or picked from the courts known
            ui.timer(REFRESH_SECONDS, refresh, immediate=False)
            wanted = request.query_params.get("replay")
            if wanted:
                await client.connected()
                await open_replay(wanted)


def _row(replay: Replay, open_uuid: object) -> dict[str, object]:
    review = replay.review
    return {
        "uuid": replay.uuid,
        "open": replay.uuid == open_uuid,
        "time": replay.requested_at.strftime("%H:%M:%S"),
        "date": replay.requested_at.strftime("%a %d %b"),
        "court": replay.court or replay.node_id,
        "match": replay.match_number or "",
        "blue": replay.blue or "",
        "red": replay.red or "",
        "side": (replay.challenge_by or "operator").upper(),
        "result": replay.challenge_result or "no result yet",
        "state": review.state.value,
        "reviewer": review.reviewer or "",
        "clip": "▶ play" if replay.clip_path else "none",
        "has_clip": replay.clip_path is not None,
    }


def _title(replay: Replay) -> str:
    by = f"{replay.challenge_by} challenge" if replay.challenge_by else "operator's replay"
    return f"{replay.court or replay.node_id} · match {replay.match_number or '?'} · {by}"


def _facts(replay: Replay) -> str:
    result = f"result: {replay.challenge_result}" if replay.challenge_result else "no result from the court yet"
    return f"{replay.requested_at:%Y-%m-%d %H:%M:%S} UTC · {result}"


def _reviewed(replay: Replay) -> str:
    review = replay.review
    if review.reviewer is None or review.reviewed_at is None:
        return "not reviewed yet"
    at = review.reviewed_at.astimezone(dt.UTC)
    return f"{review.state.value} by {review.reviewer} at {at:%H:%M:%S} UTC"
