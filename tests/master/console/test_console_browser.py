"""The console in Debian's Chromium, against a real `restrike master run` fed by a real court agent."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from restrike.ports import free_port
from runtime.curve import fingerprint
from tests.master.console.conftest import MATCH, PASSWORD
from tests.pipeline import Court, Master, keys_for
from tests.support import restrike_exe, send_pss

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def add_user(db_url: str, username: str, password: str) -> None:
    subprocess.run(
        [restrike_exe(), "master", "user", "add", username, "--db", db_url, "--password-stdin"],
        input=password + "\n", text=True, check=True, capture_output=True, timeout=60,
    )


def test_sign_in_approve_a_court_watch_it_and_sign_out(chromium: object, pg_url: str, tmp_path: Path) -> None:
    """Sign in, approve a court waiting for it, see it online, filter its events and see one arrive,
    watch the overlay's score change without a session, see the court go offline, sign out."""
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    court = Court(tmp_path / "court1", "Court 1").start()
    master = Master(pg_url, tmp_path / "master", endpoints=[court.endpoint], http_port=free_port(), approve=[])
    add_user(pg_url, "director", PASSWORD)
    master.start()
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        page.goto(master.url + "/")
        expect(page).to_have_url(re.compile(r"/sign-in\?next=%2F$"))

        page.get_by_label("User name").fill("director")
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("Wrong user name or password.")).to_be_visible()

        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("Password").press("Enter")
        expect(page).to_have_url(master.url + "/")
        page.get_by_role("button", name="Approve…").click(timeout=30_000)  # the court offered its key: pending
        expect(page.get_by_text("Approve court-1?")).to_be_visible()  # its name comes with its first heartbeat
        key_field = page.get_by_label("Court's public key")
        key_field.fill("not a key")
        page.get_by_role("button", name="Approve", exact=True).click()
        expect(page.get_by_text("Not a court key")).to_be_visible()
        key_field.fill(keys_for(court.node_id).public)  # as `restrike keys show court` prints it on the laptop
        expect(page.get_by_text(f"fingerprint {fingerprint(keys_for(court.node_id).public)}")).to_be_visible()
        page.get_by_role("button", name="Approve", exact=True).click()
        card = page.locator(".q-card", has_text="Court 1")
        expect(card.get_by_text("ONLINE")).to_be_visible(timeout=30_000)

        overlay = chromium.new_context(viewport={"width": 1920, "height": 1080})  # a viewer: no session
        try:
            _overlay_shows_score_changes(overlay.new_page(), master.url, court)
        finally:
            overlay.close()

        _events_filter_and_a_new_event_arrives(page, master.url, court)
        page.goto(master.url + "/")
        card = page.locator(".q-card", has_text="Court 1")
        expect(card.get_by_text("ONLINE")).to_be_visible(timeout=15_000)

        assert court.proc is not None
        court.proc.stop()  # the court goes away: the page turns it red without a reload
        expect(card.get_by_text("OFFLINE")).to_be_visible(timeout=15_000)

        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(re.compile(r"/sign-in$"))
        page.goto(master.url + "/")
        expect(page).to_have_url(re.compile(r"/sign-in\?next="))
    finally:
        context.close()
        master.proc.stop()
        if court.proc is not None:
            court.proc.close()


def _events_filter_and_a_new_event_arrives(page: object, url: str, court: Court) -> None:
    """Referee decisions (R) of Court 1: the clock line is there, the score line is not; a new one arrives live."""
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto(url + "/events?court=Court%201&categories=R")
    table = page.locator(".q-table")
    expect(table.get_by_text("clk;02:00;start")).to_be_visible(timeout=15_000)
    expect(table.get_by_text("sc1;5;sc2;2")).to_have_count(0)
    send_pss(court.udp_port, "clk;01:45;stop")
    expect(table.get_by_text("clk;01:45;stop")).to_be_visible(timeout=15_000)


def _overlay_shows_score_changes(page: object, url: str, court: Court) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto(url + "/overlay?court=1")
    expect(page).to_have_url(url + "/overlay?court=1")  # public: no redirect to the sign-in page
    send_pss(court.udp_port, *MATCH, "sc1;3;sc2;0")
    card = page.locator(".ov-card", has_text="Court 1")
    expect(card.locator(".ov-row.blue .ov-score")).to_have_text("3", timeout=10_000)
    expect(card.locator(".ov-row.blue .ov-name")).to_have_text("Kim Minsu")
    expect(card.locator(".ov-row.red .ov-noc")).to_have_text("CRO")
    send_pss(court.udp_port, "sc1;5;sc2;2")
    expect(card.locator(".ov-row.blue .ov-score")).to_have_text("5")
    expect(card.locator(".ov-row.red .ov-score")).to_have_text("2")
    # Read-only and nothing beyond the cards: no control, no address, no node id, no health.
    assert page.locator("button, input, select, textarea, a, .q-btn").count() == 0
    html = page.content()
    for secret in ("court-1", "127.0.0.1", str(court.pub_port), "cpu", "Sign out"):
        assert secret not in html, secret
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background in ("rgba(0, 0, 0, 0)", "transparent")
