"""Review an IVR event and see its clip play, in Debian's Chromium: a real `restrike master run` fed by a
real court agent (`restrike slave run`) driving a real headless OBS that saved the replay clip."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from master.accounts import AccountStore
from master.db.repository import CentralRepository
from master.services.ivr import IvrDeskService, IvrQuery
from restrike.ports import free_port
from tests.master.console.conftest import PASSWORD, browser_sign_in
from tests.obs_peers import MATCH_101, running_obs
from tests.pipeline import Court, Master
from tests.support import send_pss, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _court_config(tmp: Path, obs_port: int) -> Path:
    """One OBS (OBS_REC: recording and replay buffer); no streaming OBS; mpv headless."""
    config = tmp / "court.toml"
    config.write_text(
        f'[obs.rec]\nport = {obs_port}\nkeepalive_seconds = 0.5\n[obs.str]\nenabled = false\n'
        f'[ivr]\nvideos_root = "{tmp / "videos"}"\nreplay_buffer_seconds = 5\nstart_before_end_seconds = 2.0\n'
        'player_arguments = ["--no-config", "--vo=null", "--ao=null", "--keep-open=yes"]\n'
    )
    return config


def test_review_an_ivr_event_and_see_its_clip_play(chromium: object, pg_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    with running_obs(tmp_path) as obs:
        court = Court(tmp_path / "court1", "Court 1", options=("--config", str(_court_config(tmp_path, obs.port))))
        court.start()
        master = Master(pg_url, tmp_path / "master", endpoints=[court.endpoint], http_port=free_port())
        master.start()
        accounts = AccountStore(pg_url, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        accounts.add_user("director", PASSWORD)
        accounts.close()
        context = chromium.new_context(viewport={"width": 1440, "height": 900})
        try:
            # A match with seconds of video in the replay buffer, then red challenges: OBS saves the clip.
            wait_until(lambda: "OBS rec" in court.proc.text() if court.proc else False, 20, "the court's OBS link")
            send_pss(court.udp_port, *MATCH_101, "clk;02:00;start")
            for second in range(4):
                send_pss(court.udp_port, f"clk;01:5{9 - second}", f"pt1;{second % 3 + 1}")
                time.sleep(1)  # real video for the replay buffer
            send_pss(court.udp_port, "ch2")
            with CentralRepository.open(pg_url) as repository:
                desk = IvrDeskService(repository)
                wait_until(lambda: any(r.clip_path for r in desk.page(IvrQuery()).replays), 30, "the replay at the master")
                replay = desk.page(IvrQuery()).replays[0]
            assert replay.court == "Court 1" and replay.match_number == "101" and replay.challenge_by == "red"
            assert replay.blue == "KIM Tae-hun (KOR)" and replay.clip_path and replay.clip_path.endswith(".mkv")

            page = context.new_page()
            browser_sign_in(page, master.url, "/ivr")
            row = page.locator("tbody tr", has_text="KIM Tae-hun")
            expect(row).to_contain_text("RED")
            expect(row).to_contain_text("pending")

            row.get_by_text("▶ play").click()  # fetched from the court over its link, remuxed, then played
            video = page.locator("video")
            expect(video).to_be_visible(timeout=30_000)
            page.wait_for_function("document.querySelector('video').currentTime > 0.5", timeout=20_000)
            assert page.evaluate("document.querySelector('video').error") is None
            assert page.evaluate("document.querySelector('video').videoWidth") > 0
            expect(row.locator("td.bg-amber-2")).to_have_count(7)  # the open replay is the tinted row: its 7 columns

            player = page.locator(".q-card", has=video)
            player.get_by_role("button", name="Reviewed").click()
            player.get_by_label("Notes").fill("Kick to the head confirmed on the replay")
            player.get_by_role("button", name="Save review").click()
            expect(player.get_by_text("reviewed by director at")).to_be_visible()

            page.reload()
            row = page.locator("tbody tr", has_text="KIM Tae-hun")
            expect(row).to_contain_text("reviewed")
            expect(row).to_contain_text("director")
            row.click()
            expect(page.get_by_label("Notes")).to_have_value("Kick to the head confirmed on the replay")
            page.wait_for_function("document.querySelector('video') && document.querySelector('video').currentTime > 0.5",
                                   timeout=20_000)  # from the master's cache now
            assert re.search(r"Remuxed clip .* to MP4", master.proc.text())
        finally:
            context.close()
            master.proc.stop()
            if court.proc is not None:
                court.proc.stop()
