"""Sign-in, sign-out and the gate that sends every request without a session to the sign-in page.

Sign-in is a plain HTML form POST, so the session cookie is set by an HTTP response
(HttpOnly, SameSite=Lax) and never touches JavaScript. Only the overlay, the sign-in page and
NiceGUI's own assets are public.
"""

from __future__ import annotations

import logging
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from master.accounts import Accounts, SignInRefused

__all__ = ["COOKIE", "PUBLIC_PATHS", "SessionGate", "add_auth_routes", "safe_next"]

logger = logging.getLogger(__name__)

COOKIE = "restrike_session"
SIGN_IN = "/sign-in"
PUBLIC_PATHS = frozenset({SIGN_IN, "/auth/sign-in", "/favicon.ico", "/overlay"})
_PUBLIC_PREFIXES = ("/_nicegui/", "/_nicegui_ws/")


def safe_next(target: str | None) -> str:
    """A local path to return to after sign-in; anything else (another site, a scheme) becomes ``/``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class SessionGate:
    """ASGI middleware: a valid session cookie or a redirect to the sign-in page (401 for non-GET).

    The principal is left in ``request.state.principal`` for the page.
    """

    def __init__(self, app: ASGIApp, accounts: Accounts) -> None:
        self.app = app
        self.accounts = accounts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        if path in PUBLIC_PATHS or path.startswith(_PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        principal = await self.accounts.async_principal(request.cookies.get(COOKIE))
        if principal is None:
            response: Response
            if scope["method"] in ("GET", "HEAD"):
                target = path + (f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else "")
                response = RedirectResponse(f"{SIGN_IN}?{urlencode({'next': target})}", status_code=303)
            else:
                response = Response("Sign in first.", status_code=401)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def add_auth_routes(app: FastAPI, accounts: Accounts) -> None:
    """``POST /auth/sign-in`` (the form) and ``GET /sign-out`` on NiceGUI's app."""

    @app.post("/auth/sign-in")
    async def sign_in(
        request: Request, username: str = Form(""), password: str = Form(""), next: str = Form("/")
    ) -> Response:
        address = request.client.host if request.client else None
        try:
            result = await accounts.async_sign_in(username.strip(), password, address)
        except SignInRefused as refused:
            query = {"error": str(refused), "next": safe_next(next), "username": username.strip()[:64]}
            return RedirectResponse(f"{SIGN_IN}?{urlencode(query, quote_via=quote)}", status_code=303)
        response = RedirectResponse(safe_next(next), status_code=303)
        response.set_cookie(
            COOKIE, result.token, max_age=int(accounts.session_seconds), httponly=True, samesite="lax", path="/"
        )
        return response

    @app.get("/sign-out")
    async def sign_out(request: Request) -> Response:
        principal = getattr(request.state, "principal", None)
        await accounts.async_sign_out(request.cookies.get(COOKIE))
        if principal is not None:
            logger.info("%s signed out", principal.username)
        response = RedirectResponse(SIGN_IN, status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root):] or "/"
    return path
