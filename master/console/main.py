"""Wiring only: the session gate, the sign-in routes and every page, on NiceGUI's app."""

from __future__ import annotations

from nicegui import app

from master.console import handler_signatures
from master.console.auth import SessionGate, add_auth_routes
from master.console.compress import CompressedStatic
from master.console.context import ConsoleContext
from master.console.pages import courts, days, events, ivr, overlay, sign_in

__all__ = ["install"]


def install(ctx: ConsoleContext) -> None:
    """Add the console to NiceGUI's app (once per process, or once per test after a reset)."""
    handler_signatures.install()
    app.add_middleware(SessionGate, accounts=ctx.accounts)
    app.add_middleware(CompressedStatic)  # instead of NiceGUI's GZipMiddleware (ConsoleServer turns it off)
    add_auth_routes(app, ctx.accounts)
    sign_in.register(ctx)
    courts.register(ctx)
    overlay.register(ctx)
    events.register(ctx, app)
    ivr.register(ctx, app)
    days.register(ctx, app)
