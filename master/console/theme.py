"""The frame every console page shares: header with the pages, who is signed in, sign-out.

Readable from across a production desk: large type, strong status colours, nothing that
blinks except what needs the director now.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Request
from nicegui import ui

from master.accounts import Accounts
from master.console.auth import COOKIE

__all__ = ["NAV", "apply_colours", "frame"]

#: The console's pages, in the header's order (Control: the courts page with its remote-control drawer open).
NAV: list[tuple[str, str]] = [("Courts", "/"), ("Events", "/events"), ("IVR desk", "/ivr"), ("Days", "/days"), ("Control", "/?control")]

#: How often an open page checks that its session still holds (signed out elsewhere, expired, user removed).
SESSION_CHECK_SECONDS = 30.0


def apply_colours() -> None:
    ui.colors(primary="#1d4ed8", secondary="#334155", accent="#f59e0b", positive="#15803d", negative="#b91c1c",
              warning="#d97706")


@contextmanager
def frame(accounts: Accounts, request: Request, title: str) -> Iterator[None]:
    """Header, navigation and a content column; the page's own elements go inside the ``with``."""
    principal = request.state.principal
    token = request.cookies.get(COOKIE)
    apply_colours()
    ui.page_title(f"{title} · reStrike VTA")
    ui.query("body").classes("bg-slate-100")
    with ui.header().classes("bg-slate-900 text-white items-center gap-6 px-6 py-2"):
        ui.label("reStrike VTA").classes("text-xl font-bold tracking-wide")
        for label, path in NAV:
            current = path == request.url.path
            ui.link(label, path).classes(
                "text-lg no-underline " + ("text-white font-bold border-b-2 border-amber-400" if current else "text-slate-300")
            ).mark(f"nav-{label.lower()}")
        ui.space()
        ui.icon("person").classes("text-slate-300")
        ui.label(principal.username).classes("text-slate-200").mark("signed-in-user")
        ui.button("Sign out", on_click=lambda: ui.navigate.to("/sign-out")).props("flat color=white").mark("sign-out")

    async def check_session() -> None:
        if await accounts.async_principal(token) is None:
            ui.navigate.to(f"/sign-in?next={request.url.path}")

    ui.timer(SESSION_CHECK_SECONDS, check_session, immediate=False)  # the gate has just checked it
    with ui.column().classes("w-full p-6 gap-4"):
        yield
