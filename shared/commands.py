"""The director's commands to a court: the actions, the arguments each takes, what each answers.

The wire carries a command's arguments and its result's data as plain maps
(``shared.wire.Command.args``, ``CommandResult.data``), so a court that does not know an
action, or gets arguments it cannot use, still answers "failed" under the command's id.
Both ends check them against the models here (:func:`parse_args`, :func:`parse_data`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from shared.wire import Health, ObsStatus

__all__ = [
    "ARGUMENTS",
    "DEFAULT_TIMEOUTS",
    "TOURNAMENT_NAMESPACE",
    "Action",
    "ActivateDayArgs",
    "BadArguments",
    "CommandData",
    "DayReport",
    "HealthReport",
    "LogLines",
    "LogsArgs",
    "MessageArgs",
    "MuteArgs",
    "NoArgs",
    "ObsReport",
    "Priority",
    "SceneArgs",
    "day_uuid_of",
    "parse_args",
    "parse_data",
    "tournament_uuid_of",
]


#: Names a tournament the director activates by name alone: every court derives the same UUID.
TOURNAMENT_NAMESPACE = uuid.UUID("6f1c2a1e-5a8d-4b4e-9a57-2f6c1b0d7e11")


def tournament_uuid_of(name: str) -> str:
    """The UUID every court derives for a tournament activated by name alone."""
    return str(uuid.uuid5(TOURNAMENT_NAMESPACE, name))


def day_uuid_of(tournament_uuid: str, day_number: int) -> str:
    """The UUID of a tournament's day N, the same on every court and at the master."""
    return str(uuid.uuid5(uuid.UUID(tournament_uuid), f"day-{day_number}"))


class Action(StrEnum):
    """What the director can ask a court to do."""

    MUTE = "mute"  # the stream's audio inputs
    UNMUTE = "unmute"
    START_RECORDING = "start_recording"
    STOP_RECORDING = "stop_recording"
    SET_SCENE = "set_scene"
    START_REPLAY_BUFFER = "start_replay_buffer"
    STOP_REPLAY_BUFFER = "stop_replay_buffer"
    REPLAY = "replay"  # the REPLAY flow: clip saved, shown in the player, IVR scene
    RESTART_OBS = "restart_obs"
    MESSAGE = "message"  # shown on the court's local page
    ACTIVATE_DAY = "activate_day"
    FINISH_DAY = "finish_day"
    HEALTH = "health"
    LOGS = "logs"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class BadArguments(ValueError):
    """Arguments an action does not take; the message names the first problem."""


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoArgs(_Args):
    """An action that takes nothing."""


class MuteArgs(_Args):
    inputs: list[Annotated[str, Field(min_length=1, max_length=255)]] | None = Field(
        None, max_length=32, description="OBS audio inputs; default: the court's configured stream inputs"
    )


class SceneArgs(_Args):
    scene: str = Field(min_length=1, max_length=255)


class MessageArgs(_Args):
    text: str = Field(min_length=1, max_length=500)
    priority: Priority = Priority.NORMAL
    kind: str = Field("info", min_length=1, max_length=32, pattern=r"^[a-z_]+$")
    announcement_id: int | None = Field(None, ge=1, description="The master's central_announcements row")


class ActivateDayArgs(_Args):
    """The master's tournament and day: every court tags its events with the same UUIDs."""

    tournament_name: str = Field(min_length=1, max_length=255)
    day_number: int = Field(ge=1, le=60)
    date: dt.date
    tournament_uuid: uuid.UUID | None = Field(None, description="default: derived from the name, the same on every court")
    day_uuid: uuid.UUID | None = Field(None, description="default: derived from the tournament and the day number")

    @property
    def tournament(self) -> str:
        """The tournament's UUID as the courts store it."""
        return str(self.tournament_uuid) if self.tournament_uuid else tournament_uuid_of(self.tournament_name)


class LogsArgs(_Args):
    lines: int = Field(100, ge=1, le=2000)
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


ARGUMENTS: dict[Action, type[_Args]] = {
    Action.MUTE: MuteArgs,
    Action.UNMUTE: MuteArgs,
    Action.START_RECORDING: NoArgs,
    Action.STOP_RECORDING: NoArgs,
    Action.SET_SCENE: SceneArgs,
    Action.START_REPLAY_BUFFER: NoArgs,
    Action.STOP_REPLAY_BUFFER: NoArgs,
    Action.REPLAY: NoArgs,
    Action.RESTART_OBS: NoArgs,
    Action.MESSAGE: MessageArgs,
    Action.ACTIVATE_DAY: ActivateDayArgs,
    Action.FINISH_DAY: NoArgs,
    Action.HEALTH: NoArgs,
    Action.LOGS: LogsArgs,
}


#: Seconds a command may take, court included, unless the caller says otherwise.
DEFAULT_TIMEOUTS: dict[Action, float] = {
    **dict.fromkeys(Action, 5.0),
    Action.START_RECORDING: 15.0,
    Action.STOP_RECORDING: 20.0,
    Action.START_REPLAY_BUFFER: 15.0,
    Action.STOP_REPLAY_BUFFER: 20.0,
    Action.REPLAY: 30.0,
    Action.RESTART_OBS: 30.0,
    Action.ACTIVATE_DAY: 10.0,
}


def parse_args(action: Action, args: dict[str, Any]) -> _Args:
    """The arguments as the action's model; raises :class:`BadArguments` with an operator's reason."""
    try:
        return ARGUMENTS[action].model_validate(args)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "arguments"
        raise BadArguments(f"{action.value}: {where}: {first['msg']}") from None


# --- what a command answers besides its outcome -----------------------------------------------


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthReport(_Data):
    kind: Literal["health"] = "health"
    health: Health
    obs: ObsStatus
    epoch: str
    last_seq: int
    received: int
    dropped: int
    uptime_seconds: float
    tournament_day_uuid: str | None = None


class LogLines(_Data):
    kind: Literal["logs"] = "logs"
    lines: list[str]


class DayReport(_Data):
    kind: Literal["day"] = "day"
    tournament_uuid: str | None
    day_uuid: str | None
    day_number: int | None
    folder: str | None = None


class ObsReport(_Data):
    kind: Literal["obs"] = "obs"
    detail: str


CommandData = Annotated[HealthReport | LogLines | DayReport | ObsReport, Field(discriminator="kind")]
_DATA: TypeAdapter[CommandData] = TypeAdapter(CommandData)


def parse_data(data: dict[str, Any]) -> CommandData:
    """A result's data as its model; raises :class:`BadArguments` when it is not one."""
    try:
        return _DATA.validate_python(data)
    except ValidationError as exc:
        raise BadArguments(f"result data: {exc.errors()[0]['msg']}") from None
