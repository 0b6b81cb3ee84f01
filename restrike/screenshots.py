"""Regenerate ``docs/screenshots/*.png`` from a demo venue, in Debian's Chromium (a developer's tool).

Starts ``restrike demo`` with its web console, lets the simulated matches run a while, signs
in as the demo's director and photographs every page: the console at 1440x900, the overlay at
1920x1080 (the OBS browser source size), over a dark background so its transparent parts read.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from restrike.ports import free_port

__all__ = ["main"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
CONSOLE = {"width": 1440, "height": 900}
OVERLAY = {"width": 1920, "height": 1080}
_SIGN_IN = re.compile(r"Console: (\S+)/ · sign in as (\S+), password (\S+)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--courts", type=int, default=4)
    parser.add_argument("--warm-up", type=float, default=25.0, help="Seconds of simulated play before the pictures")
    parser.add_argument("--speed", type=float, default=15.0, help="The demo's play speed (lower on a busy machine)")
    args = parser.parse_args(argv)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("Playwright is a test tool: run scripts/setup --test first", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "demo.log"
        with log.open("wb") as out:
            demo = subprocess.Popen(
                [str(Path(sys.executable).parent / "restrike"), "demo", "--plain", "--courts", str(args.courts), "--speed", str(args.speed),
                 "--http-port", str(free_port()), "-d", str(Path(tmp) / "demo")],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"},
            )
        try:
            url, user, password = _wait_for_sign_in(log, demo)
            time.sleep(args.warm_up)  # let the matches reach scores, breaks and results
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    _console_pages(browser, url, user, password, args.out)
                    _overlays(browser, url, args.out)
                finally:
                    browser.close()
        finally:
            demo.send_signal(signal.SIGTERM)  # it drains and checks its numbers (bounded), then exits
            try:
                demo.wait(120)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait(10)
    for picture in sorted(args.out.glob("*.png")):
        print(picture)
    return 0


def _wait_for_sign_in(log: Path, demo: subprocess.Popen[bytes], timeout: float = 60.0) -> tuple[str, str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _SIGN_IN.search(log.read_text(errors="replace"))
        if found:
            return found.group(1), found.group(2), found.group(3)
        if demo.poll() is not None:
            break
        time.sleep(0.2)
    raise SystemExit(f"the demo did not start its console:\n{log.read_text(errors='replace')[-2000:]}")


def _console_pages(browser: object, url: str, user: str, password: str, out: Path) -> None:
    context = browser.new_context(viewport=CONSOLE)  # type: ignore[attr-defined]
    context.set_default_timeout(120_000)  # a loaded machine (tests beside it) serves the demo's pages slowly
    page = context.new_page()
    page.goto(url + "/")
    page.screenshot(path=str(out / "sign-in.png"))
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(url + "/")
    _activate_a_day(page, url)
    page.goto(url + "/")
    page.locator(".q-card").first.wait_for()
    page.screenshot(path=str(out / "courts.png"))
    _control_drawer(page, out)
    page.goto(url + "/events")
    page.locator(".q-table tbody tr").first.wait_for()
    page.screenshot(path=str(out / "events.png"))
    _ivr_desk(page, url, out)
    page.goto(url + "/days")  # the day activated first has collected the events, replays and reviews since
    page.locator("canvas").first.wait_for()
    page.screenshot(path=str(out / "days.png"))
    context.close()


def _control_drawer(page: object, out: Path) -> None:
    """The remote-control drawer with every court selected and a health report's per-court results."""
    page.get_by_role("button", name="Remote control").click()  # type: ignore[attr-defined]
    drawer = page.locator(".q-drawer")  # type: ignore[attr-defined]
    drawer.get_by_text("All courts").click()
    drawer.get_by_role("button", name="Health now").click()
    drawer.get_by_text(re.compile(r"^\d+ (done|failed|expired)")).first.wait_for()  # every court answered or expired
    page.screenshot(path=str(out / "control-drawer.png"))  # type: ignore[attr-defined]
    drawer.get_by_role("tab", name="Audit").click()
    drawer.get_by_text("by ").first.wait_for()
    page.screenshot(path=str(out / "control-audit.png"))  # type: ignore[attr-defined]


def _activate_a_day(page: Any, url: str) -> None:
    """Plan the demo's tournament and its first day on the days page, and activate it on every court."""
    page.goto(url + "/days")
    page.get_by_label("Name").fill("Demo Open")
    page.get_by_label("Location").fill("Zagreb")
    page.get_by_label("First day").fill(time.strftime("%Y-%m-%d"))
    page.get_by_role("button", name="Create tournament").click()
    page.get_by_role("button", name="Add day 1").click()
    page.get_by_role("button", name="Activate on all courts").click()
    page.get_by_text(re.compile(r"^\d+ done")).wait_for()


def _ivr_desk(page: Any, url: str, out: Path) -> None:
    """The desk mid-day: two replays marked reviewed (bulk), the newest open beside the list."""
    page.goto(url + "/ivr")
    rows = page.locator(".q-table tbody tr")
    rows.nth(2).wait_for()  # three challenges at least (the demo's matches make more)
    for n in (1, 2):
        rows.nth(n).locator(".q-checkbox").click()
    page.get_by_role("button", name="Mark reviewed").click()
    page.get_by_text("marked reviewed").wait_for()
    rows.first.locator("td").nth(2).click()
    page.get_by_role("button", name="Save review").wait_for()
    page.wait_for_timeout(1500)  # the clip's fetch says how it went
    page.screenshot(path=str(out / "ivr-desk.png"))


def _overlays(browser: object, url: str, out: Path) -> None:
    context = browser.new_context(viewport=OVERLAY)  # type: ignore[attr-defined]
    page = context.new_page()
    for name, path in (("overlay.png", "/overlay"), ("overlay-court.png", "/overlay?court=1")):
        page.goto(url + path)
        page.locator(".ov-card").first.wait_for()
        # The page is transparent for OBS; a dark backdrop stands in for the video it is composed over.
        page.evaluate("document.documentElement.style.setProperty('background', 'linear-gradient(135deg, #4b5563, #14532d)', 'important')")
        page.screenshot(path=str(out / name))
    context.close()


if __name__ == "__main__":
    raise SystemExit(main())
