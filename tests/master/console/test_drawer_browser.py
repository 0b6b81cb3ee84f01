"""The remote-control drawer in Debian's Chromium: a bulk scene change with each court's result.

A real ``restrike master run`` with its console, four real court agents: courts 1 and 2 drive one
real headless OBS (its STR connection), court 3 runs without OBS, court 4 has gone offline.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from restrike.headless_obs import HeadlessObs
from restrike.ports import free_port
from tests.master.console.conftest import PASSWORD, browser_sign_in
from tests.master.console.test_console_browser import add_user
from tests.obs_peers import running_obs
from tests.pipeline import Court, Master

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _program_scene(obs: HeadlessObs) -> str:
    import obsws_python

    client = obsws_python.ReqClient(host="127.0.0.1", port=obs.port, timeout=5)
    try:
        return str(client.get_current_program_scene().current_program_scene_name)
    finally:
        client.disconnect()


def _court(tmp: Path, number: int, obs: HeadlessObs | None) -> Court:
    options: tuple[str, ...] = ("--operator-port", str(free_port()))
    if obs is None:
        options += ("--no-obs",)
    else:
        config = tmp / f"court{number}.toml"
        config.write_text(f"[obs.rec]\nenabled = false\n\n[obs.str]\nport = {obs.port}\nkeepalive_seconds = 0.5\n")
        options += ("--config", str(config))
    return Court(tmp / f"court{number}", f"Court {number}", options=options)


def test_a_bulk_scene_change_shows_each_courts_result_as_it_arrives(chromium: object, pg_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    with running_obs(tmp_path) as obs:
        assert _program_scene(obs) == "LIVE_SCENE"
        courts = [_court(tmp_path, 1, obs), _court(tmp_path, 2, obs), _court(tmp_path, 3, None), _court(tmp_path, 4, None)]
        master = Master(pg_url, tmp_path / "master", endpoints=[c.endpoint for c in courts], http_port=free_port())
        context = chromium.new_context(viewport={"width": 1440, "height": 900})
        try:
            with ThreadPoolExecutor(len(courts) + 1) as pool:  # each start waits for a process; together they overlap
                started = [pool.submit(c.start) for c in courts] + [pool.submit(add_user, pg_url, "director", PASSWORD)]
                for future in started:
                    future.result()
            master.start()
            page = context.new_page()
            browser_sign_in(page, master.url, "/")
            for court in courts:
                expect(page.locator(".q-card", has_text=court.name).get_by_text("ONLINE")).to_be_visible(timeout=20_000)
            for court in courts[:2]:  # both have OBS_STR up before the command
                expect(page.locator(".q-card", has_text=court.name).get_by_text("scene: LIVE_SCENE")).to_be_visible(timeout=20_000)
            assert courts[3].proc is not None
            courts[3].proc.stop()  # court 4 goes away
            expect(page.locator(".q-card", has_text="Court 4").get_by_text("OFFLINE")).to_be_visible(timeout=15_000)

            page.get_by_role("button", name="Remote control").click()
            drawer = page.locator(".q-drawer")
            drawer.get_by_text("All courts").click()
            for court in courts:
                expect(drawer.get_by_role("checkbox", name=court.name)).to_be_checked()
            # A destructive action asks first, naming the courts and the one that cannot answer; cancelled here.
            drawer.get_by_role("button", name="Stop recording…").click()
            dialog = page.locator(".q-dialog")
            expect(dialog).to_contain_text("Stop recording on 4 court(s)?")
            expect(dialog).to_contain_text("Court 1, Court 2, Court 3, Court 4")
            expect(dialog).to_contain_text("OFFLINE now: Court 4")
            dialog.get_by_role("button", name="Cancel").click()
            expect(dialog).to_have_count(0)

            drawer.get_by_role("button", name="IVR scene").click()

            result = drawer.locator(".q-card", has_text="set scene").first
            rows = {c.name: result.locator(f'[data-court="{c.name}"]') for c in courts}
            expect(rows["Court 1"].get_by_text("done", exact=True)).to_be_visible(timeout=10_000)
            expect(rows["Court 2"].get_by_text("done", exact=True)).to_be_visible()
            expect(rows["Court 3"].get_by_text("failed", exact=True)).to_be_visible()
            expect(rows["Court 3"]).to_contain_text("OBS_STR is not configured")
            # The live courts' results are on screen while the offline court's is still awaited (5 s deadline).
            expect(rows["Court 4"].get_by_text("waiting", exact=True)).to_be_visible()
            expect(result.get_by_text(re.compile(r"^2 done · 1 failed · 1 expired$"))).to_be_visible(timeout=10_000)
            expect(rows["Court 4"].get_by_text("expired", exact=True)).to_be_visible()
            expect(rows["Court 4"]).to_contain_text("no answer within 5 s")
            for name in ("Court 1", "Court 2", "Court 4"):
                expect(rows[name]).to_contain_text(re.compile(r"\d+ ms"))

            assert _program_scene(obs) == "IVR_SCENE"  # in OBS itself
            expect(page.locator(".q-card", has_text="Court 1").get_by_text("scene: IVR_SCENE")).to_be_visible(timeout=10_000)

            drawer.get_by_role("tab", name="Audit").click()
            entry = drawer.locator(".q-card", has_text="by director").first
            expect(entry).to_contain_text("set scene")
            expect(entry).to_contain_text("scene=ivr")
            expect(entry).to_contain_text("expired", timeout=10_000)
        finally:
            context.close()
            master.proc.stop()
            for court in courts:
                if court.proc is not None:
                    court.proc.close()
