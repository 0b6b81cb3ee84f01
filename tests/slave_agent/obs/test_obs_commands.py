"""The director's OBS commands through the whole path: master -> CURVE DEALER -> court ROUTER -> real OBS.

Two real headless OBS (REC and STR); every effect is read back from OBS itself.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from master.app import Master
from master.config import MasterConfig
from restrike.headless_obs import HeadlessObs
from restrike.venue_keys import set_up_venue
from shared.commands import Action, ObsReport
from slave_agent.obs.supervisor import ConnectionState
from tests.obs_peers import running_court
from tests.support import async_wait_until

pytestmark = pytest.mark.slow

AUDIO = "Stream audio"


def test_obs_actions_have_their_effect_in_obs(tmp_path: Path, obs_pair: tuple[HeadlessObs, HeadlessObs]) -> None:
    rec, streamer = obs_pair
    url = f"sqlite:///{tmp_path / 'central.sqlite3'}"
    set_up_venue(tmp_path / "master" / "keys", {"court-7": tmp_path / "court" / "keys"}, url)

    async def main() -> None:
        async with running_court(tmp_path, rec, streamer, str_overrides={"mute_inputs": [AUDIO]}) as court:
            obs = court.agent.obs
            assert obs is not None and obs.rec is not None and obs.str is not None
            # an input with audio on the stream (the headless OBS has only colours)
            await obs.str.async_request("CreateInput", {"sceneName": "LIVE_SCENE", "inputName": AUDIO,
                                                        "inputKind": "ffmpeg_source", "inputSettings": {}})
            pub = court.config.publisher
            hub = Master(MasterConfig(data_dir=tmp_path / "master", database_url=url, mdns=False, http_port=0,
                                      endpoints=[f"court-7@127.0.0.1:{pub.pub_port}:{pub.router_port}"]))
            await hub.async_startup()
            try:
                control = hub.control
                assert control is not None
                await async_wait_until(lambda: all(link.online for link in hub.links.values()), 15, "the court online")

                async def send(action: Action, **args: object) -> tuple[str, str | None, object]:
                    result = await control.async_send(action, args)
                    (court_result,) = result.results
                    return court_result.outcome, court_result.reason, court_result.data

                async def muted() -> bool:
                    return bool((await obs.str.async_request("GetInputMute", {"inputName": AUDIO}))["inputMuted"])

                assert (await send(Action.SET_SCENE, scene="ivr"))[0] == "done"
                await court.until(lambda: obs.str.snapshot.current_scene == "IVR_SCENE", "IVR scene on air")
                assert (await send(Action.SET_SCENE, scene="LIVE_SCENE"))[0] == "done"
                await court.until(lambda: obs.str.snapshot.current_scene == "LIVE_SCENE", "live scene on air")
                outcome, reason, _ = await send(Action.SET_SCENE, scene="NO_SUCH_SCENE")
                assert outcome == "failed" and reason  # OBS's own reason, one line

                assert (await send(Action.MUTE))[0] == "done" and await muted()
                assert (await send(Action.UNMUTE))[0] == "done" and not await muted()

                outcome, _, data = await send(Action.START_RECORDING)
                assert outcome == "done" and obs.rec.snapshot.recording
                assert (await send(Action.START_REPLAY_BUFFER))[0] == "done"
                await court.until(lambda: obs.rec.snapshot.replay_buffer, "the replay buffer running")
                await asyncio.sleep(2.0)  # a clip needs seconds of video
                outcome, reason, data = await send(Action.REPLAY)
                assert outcome == "done", reason
                assert isinstance(data, ObsReport) and data.detail.startswith("clip ")
                assert Path(data.detail.removeprefix("clip ")).is_file()
                assert (await send(Action.STOP_REPLAY_BUFFER))[0] == "done"
                await court.until(lambda: not obs.rec.snapshot.replay_buffer, "the replay buffer stopped")
                outcome, _, data = await send(Action.STOP_RECORDING)
                assert outcome == "done" and not obs.rec.snapshot.recording
                assert isinstance(data, ObsReport) and Path(data.detail.split(": ", 1)[1]).is_file()  # the file is there

                assert (await send(Action.RESTART_OBS))[0] == "done"
                await court.until(lambda: obs.rec.snapshot.state is ConnectionState.UP and obs.str.snapshot.state is ConnectionState.UP
                                  and obs.rec.snapshot.version is not None, "both connections back", timeout=30)
            finally:
                await hub.async_shutdown()

    asyncio.run(main())
