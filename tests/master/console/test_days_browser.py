"""The tournament-days page in Debian's Chromium, on a real `restrike master run` with a real court agent:
plan a day, activate it, see the court on it and its events in the day's report (chart drawn)."""

from __future__ import annotations

import datetime as dt
import re
import socket
from pathlib import Path

import pytest

from restrike.ports import free_port
from tests.master.console.conftest import MATCH, PASSWORD, browser_sign_in
from tests.master.console.test_console_browser import add_user
from tests.pipeline import Court, Master

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_plan_and_activate_a_day_then_read_its_report(chromium: object, pg_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    court = Court(tmp_path / "court1", "Court 1").start()
    master = Master(pg_url, tmp_path / "master", endpoints=[court.endpoint], http_port=free_port())
    add_user(pg_url, "director", PASSWORD)
    master.start()
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        browser_sign_in(page, master.url, "/days")

        page.get_by_label("Name").fill("Zagreb Open")
        page.get_by_label("First day").fill(dt.date.today().isoformat())
        page.get_by_role("button", name="Create tournament").click()
        page.get_by_role("button", name="Add day 1").click()
        page.get_by_role("button", name="Activate on all courts").click()
        expect(page.get_by_text("1 done")).to_be_visible(timeout=15_000)
        expect(page.get_by_text("Active on Court 1")).to_be_visible(timeout=15_000)

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for line in [*MATCH, "sc1;3;sc2;0", "pt1;1", "pt1;3", "hl1;40", "wg2;1"]:
                sock.sendto(line.encode(), ("127.0.0.1", court.udp_port))
        # The report is read when the page opens: reopen it until the court's events have reached the master.
        summary = page.get_by_text(re.compile(r"^10 events · 0 replays"))
        for _ in range(30):
            page.reload()
            page.get_by_text("Zagreb Open · day 1").wait_for()
            if summary.count():
                break
            page.wait_for_timeout(500)
        expect(summary).to_be_visible()
        expect(page.locator(".q-table").first.get_by_text("Court 1", exact=True)).to_be_visible()
        expect(page.locator("canvas").first).to_be_visible()  # echarts drew the charts
        picture = page.screenshot(full_page=True)  # bytes: a path would leave Playwright's file-writer thread behind
        assert picture.startswith(b"\x89PNG") and len(picture) > 20_000
        (tmp_path / "days.png").write_bytes(picture)
    finally:
        context.close()
        master.proc.stop()
        if court.proc is not None:
            court.proc.close()
