"""What an operator or the master can ask of a court's OBS, as typed coroutines (run them on the agent's loop).

The command handler (master -> court) calls these and turns their errors into replies:
:class:`ObsUnavailable` (that OBS is not connected: nothing was sent), :class:`RequestFailed`
(OBS answered no, with its code), :class:`ObsError` (anything else, with a reason).
"""

from __future__ import annotations

from typing import Literal

from slave_agent.obs.court import CourtObs
from slave_agent.obs.director import ReplayDirector
from slave_agent.obs.settings import ObsConnectionConfig
from slave_agent.obs.supervisor import ObsError, ObsSupervisor, ObsUnavailable, RequestFailed
from slave_agent.obs.triggers import TriggerLog

__all__ = ["CourtActions", "ObsError", "ObsUnavailable", "RequestFailed"]

Connection = Literal["rec", "str"]


class CourtActions:
    """Mute, record, switch scenes, run the replay buffer, replay, reconnect or restart OBS: one court's OBS commands."""

    def __init__(self, obs: CourtObs, director: ReplayDirector):
        self.obs = obs
        self.director = director

    def _connection(self, name: Connection) -> ObsSupervisor:
        sup = self.obs.rec if name == "rec" else self.obs.str
        if sup is None:
            raise ObsUnavailable(f"OBS_{name.upper()} is not configured on this court ([obs.{name}] enabled = false)")
        return sup

    async def async_mute(self, muted: bool) -> list[str]:
        """Mute (or unmute) every input listed in ``mute_inputs`` of both connections; returns their names."""
        done: list[str] = []
        connections: tuple[tuple[Connection, ObsConnectionConfig], ...] = (
            ("rec", self.obs.config.rec), ("str", self.obs.config.str),
        )
        for name, cfg in connections:
            if not cfg.mute_inputs or not cfg.enabled:
                continue
            sup = self._connection(name)
            for input_name in cfg.mute_inputs:
                await sup.async_set_input_mute(input_name, muted)
                done.append(input_name)
        return done

    async def async_recording(self, on: bool) -> str:
        """Start or stop OBS_REC's recording; returns the file."""
        rec = self._connection("rec")
        return await (rec.async_start_record() if on else rec.async_stop_record())

    async def async_replay_buffer(self, on: bool) -> None:
        rec = self._connection("rec")
        await (rec.async_start_replay_buffer() if on else rec.async_stop_replay_buffer())

    async def async_streaming(self, on: bool) -> None:
        streamer = self._connection("str")
        await (streamer.async_start_stream() if on else streamer.async_stop_stream())

    async def async_scene(self, scene: str) -> None:
        """Put a scene on air on OBS_STR: ``live``, ``ivr`` (the configured ones) or any scene by name."""
        cfg = self.obs.config.str
        name = {"live": cfg.live_scene, "ivr": cfg.ivr_scene}.get(scene, scene)
        await self._connection("str").async_set_scene(name)

    async def async_replay(self, source: str = "master") -> TriggerLog:
        """An instant replay, as a challenge would start it; returns what each step did."""
        return await self.director.async_replay(source)

    async def async_review_over(self, source: str = "master") -> TriggerLog:
        return await self.director.async_review_over(source)

    async def async_reconnect(self, name: Connection) -> None:
        """Drop and rebuild one connection now (also after a refused password was fixed)."""
        await self._connection(name).async_reconnect()

    async def async_restart_obs(self) -> list[str]:
        """Restart each OBS the agent runs (``[obs.<name>.process]``) and reconnect the others; what happened."""
        if not self.obs.supervisors:
            raise ObsUnavailable("no OBS connection is configured on this court")
        return await self.obs.async_restart()
