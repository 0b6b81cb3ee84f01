"""``/sign-in``: user name and password, posted as a plain form (see :mod:`master.console.auth`)."""

from __future__ import annotations

from nicegui import ui

from master.console.auth import safe_next
from master.console.context import ConsoleContext
from master.console.theme import apply_colours

__all__ = ["register"]


def register(ctx: ConsoleContext) -> None:
    @ui.page("/sign-in")
    def sign_in_page(next: str = "/", error: str = "", username: str = "") -> None:
        apply_colours()
        ui.page_title("Sign in · reStrike VTA")
        ui.query("body").classes("bg-slate-900")
        with ui.card().classes("absolute-center w-96 p-8 gap-4"):
            ui.label("reStrike VTA").classes("text-2xl font-bold")
            ui.label("Director's console").classes("text-slate-500 -mt-3")
            if error:
                ui.label(error).classes("text-negative font-medium").mark("sign-in-error")
            with ui.element("form").props('method=post action="/auth/sign-in"').classes("w-full flex flex-col gap-4"):
                ui.input("User name", value=username).props('name=username autocomplete=username autofocus outlined').classes(
                    "w-full"
                ).mark("username")
                ui.input("Password", password=True).props('name=password autocomplete=current-password outlined').classes(
                    "w-full"
                ).mark("password")
                ui.element("input").props(f'type=hidden name=next value="{safe_next(next)}"')
                ui.button("Sign in").props("type=submit unelevated size=lg").classes("w-full").mark("sign-in")
