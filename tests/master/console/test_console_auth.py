"""Sign-in, sign-out and the gate, through NiceGUI's simulated user (no browser, fast)."""

from __future__ import annotations

import pytest
from nicegui import Client

from master.console.auth import COOKIE, PUBLIC_PATHS, safe_next
from master.console.pages.days import chapters_path
from tests.master.console.conftest import ConsoleUnderTest

pytestmark = pytest.mark.asyncio


def _console_pages() -> list[str]:
    """Every page the console registered, so a page added later is covered without editing this test."""
    return sorted(set(Client.page_routes.values()) - PUBLIC_PATHS)


async def test_every_page_but_the_public_ones_sends_to_sign_in(console: ConsoleUnderTest) -> None:
    client = console.user.http_client  # type: ignore[attr-defined]
    pages = _console_pages()
    assert {"/", "/events", "/ivr", "/days"} <= set(pages)
    for path in [*pages, "/events.csv", "/clips/some-replay", chapters_path("some-day", "court-1"), "/sign-out",
                 "/no-such-page"]:
        response = await client.get(path, params={"court": "3"})
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/sign-in?next="), path
    drawer = await client.get("/", params={"control": "court-1"})  # the courts page with its remote-control drawer open
    assert drawer.status_code == 303 and drawer.headers["location"] == "/sign-in?next=%2F%3Fcontrol%3Dcourt-1"
    assert (await client.post("/", data={})).status_code == 401
    assert (await client.get("/sign-in")).status_code == 200
    assert (await client.get("/", headers={"cookie": f"{COOKIE}=forged"})).status_code == 303


async def test_sign_in_opens_the_page_asked_for_and_sign_out_ends_the_session(console: ConsoleUnderTest) -> None:
    user = console.user
    await user.open("/")  # type: ignore[attr-defined]
    await user.should_see(marker="sign-in")  # type: ignore[attr-defined]

    response = await console.sign_in(next="/?court=2")
    assert response.status_code == 303 and response.headers["location"] == "/?court=2"
    cookie = response.cookies[COOKIE]
    assert "httponly" in response.headers["set-cookie"].lower()
    assert (await console.accounts.async_principal(cookie)).username == "director"  # type: ignore[union-attr]

    await user.open("/")  # type: ignore[attr-defined]
    await user.should_see("director")  # type: ignore[attr-defined]
    await user.should_see(marker="no-courts")  # type: ignore[attr-defined]

    response = await user.http_client.get("/sign-out")  # type: ignore[attr-defined]
    assert response.status_code == 303 and response.headers["location"] == "/sign-in"
    assert await console.accounts.async_principal(cookie) is None
    assert (await user.http_client.get("/", headers={"cookie": f"{COOKIE}={cookie}"})).status_code == 303  # type: ignore[attr-defined]


async def test_a_wrong_password_says_so_and_keeps_the_user_name(console: ConsoleUnderTest) -> None:
    response = await console.sign_in(password="not it at all", next="/")
    assert response.status_code == 303
    assert COOKIE not in response.cookies
    await console.user.open(response.headers["location"])  # type: ignore[attr-defined]
    await console.user.should_see("Wrong user name or password.")  # type: ignore[attr-defined]
    await console.user.should_see(marker="username")  # type: ignore[attr-defined]


async def test_repeated_wrong_passwords_are_refused_for_a_while(console: ConsoleUnderTest) -> None:
    for _ in range(console.accounts.throttle.free_failures):
        await console.sign_in(password="guess guess")
    response = await console.sign_in()  # the right password, too early
    assert COOKIE not in response.cookies
    assert "Too many failed attempts" in response.headers["location"].replace("%20", " ")


@pytest.mark.parametrize(
    ("target", "expected"),
    [("/events?day=2", "/events?day=2"), ("//evil.example/x", "/"), ("https://evil.example", "/"), ("", "/"), ("/\\evil", "/")],
)
async def test_only_local_pages_are_returned_to(target: str, expected: str) -> None:
    assert safe_next(target) == expected
