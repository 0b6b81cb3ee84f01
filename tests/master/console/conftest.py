"""Console fixtures: NiceGUI's simulated user (no browser) and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from argon2 import PasswordHasher

from master.accounts import Accounts, AccountStore
from master.app import Master
from master.config import MasterConfig
from master.db.migrate import upgrade
from master.db.repository import CentralRepository

CHROMIUM = "/usr/bin/chromium"
#: real-peers.md: these flags make Debian's Chromium run headless as root, offline, without first-run noise.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PASSWORD = "correct horse battery"
#: A match loaded and started on a court: Kim Minsu (blue, KOR) against Ivan Horvat (red, CRO), 0:0.
MATCH = [
    "pre;FightLoaded",
    "at1;Kim Minsu;Kim Minsu;KOR;at2;Ivan Horvat;Ivan Horvat;CRO",
    "mch;101;Final;M -68kg;0;#0000ff;#FFFFFF;#ff0000;#FFFFFF;null;Seniors;3;120;cntDown;16;5;",
    "rdy;FightReady",
    "clk;02:00;start",
]
#: How long a test's teardown waits for click handlers still running.
HANDLER_GRACE_SECONDS = 15.0


@dataclass
class ConsoleUnderTest:
    """A console installed on NiceGUI's app in this process, with a user who can sign in."""

    user: object  # nicegui.testing.User
    accounts: Accounts
    master: Master
    repository: CentralRepository

    async def sign_in(self, username: str = "director", password: str = PASSWORD, next: str = "/") -> httpx.Response:
        client: httpx.AsyncClient = self.user.http_client  # type: ignore[attr-defined]
        return await client.post("/auth/sign-in", data={"username": username, "password": password, "next": next})


@pytest.fixture
def master_config(pg_url: str, tmp_path: Path) -> MasterConfig:
    """The console's master (not started); a module overrides it to link courts."""
    return MasterConfig(database_url=pg_url, mdns=False, http_port=0, curve=False, data_dir=tmp_path / "master")


@pytest_asyncio.fixture
async def console(pg_url: str, tmp_path: Path, master_config: MasterConfig) -> AsyncIterator[ConsoleUnderTest]:
    """NiceGUI's user simulation over the whole console (gate, routes, pages)."""
    from nicegui import Client, background_tasks, core
    from nicegui.storage import Storage
    from nicegui.testing.general import nicegui_reset_globals, prepare_simulation
    from nicegui.testing.user import User

    from master.console.context import ConsoleContext
    from master.console.main import install

    upgrade(pg_url)
    store = AccountStore(pg_url, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    store.add_user("director", PASSWORD)
    accounts = Accounts(store, session_seconds=3600)
    repository = CentralRepository.open(pg_url)
    master = Master(master_config)
    Storage.path = tmp_path / "nicegui"
    modules = dict(sys.modules)
    with _modules_kept(modules), nicegui_reset_globals():
        os.environ["NICEGUI_USER_SIMULATION"] = "true"
        try:
            prepare_simulation()
            install(ConsoleContext(accounts=accounts, master=master, repository=repository))
            transport = httpx.ASGITransport(core.app)
            async with core.app.router.lifespan_context(core.app), httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield ConsoleUnderTest(User(client), accounts, master, repository)
                # A click's handler still running (a page reloading after a command) ends before the executor
                # it reads through goes; timers (``_run_in_loop``) stop with their client.
                handlers = [t for t in background_tasks.running_tasks if t.get_coro().__name__ == "_await_in_context"]
                if handlers:
                    await asyncio.wait(handlers, timeout=HANDLER_GRACE_SECONDS)
                for page_client in list(Client.instances.values()):
                    page_client.delete()  # stops its outbox loop and timers before NiceGUI's shutdown cancels what is left
                # A timer's database read may still run in a thread: let it end before the engines close.
                await asyncio.get_running_loop().shutdown_default_executor()
        finally:
            os.environ.pop("NICEGUI_USER_SIMULATION", None)
            store.close()
            repository.close()


@contextlib.contextmanager
def _modules_kept(modules: dict[str, object]) -> Iterator[None]:
    """NiceGUI's reset drops the modules that defined pages (``master`` among them) from sys.modules;
    put them back, or the next ``import master.app`` builds a second ``master`` package without ``app``."""
    try:
        yield
    finally:
        for name, module in modules.items():
            sys.modules.setdefault(name, module)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """Debian's Chromium under Playwright, once per module: sync Playwright holds an event loop while it
    runs, which the asyncio tests of later modules could not start beside."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: install chromium (scripts/services does); never `playwright install`")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def browser_sign_in(page: object, url: str, path: str) -> None:
    """Open ``path`` without a session, sign in as the director on the page it sends to, land on ``path``."""
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto(url + path)
    page.get_by_label("User name").fill("director")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    expect(page).to_have_url(url + path)
