"""What the operator page and ``/api/status`` show, read from the running agent (pure reads, on its loop)."""

from __future__ import annotations

from collections import deque
from typing import Any

from shared.match_snapshot import MatchSnapshot
from shared.records import EventRecord, ms_to_iso
from slave_agent.commands.book import DirectorMessage
from slave_agent.obs.triggers import TriggerLog

__all__ = ["RecentEvents", "log_view", "match_view", "message_view"]


class RecentEvents:
    """The last stored events (a post-commit listener), newest last; bounded."""

    def __init__(self, size: int = 15):
        self.events: deque[EventRecord] = deque(maxlen=size)

    def __call__(self, records: list[EventRecord]) -> None:
        self.events.extend(records)

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"seq": r.seq, "time": ms_to_iso(r.received_ms)[11:23], "code": r.code, "raw": r.raw,
             "match": r.match_number or "", "clip": "yes" if r.ivr_link else ""}
            for r in reversed(self.events)
        ]


def match_view(snapshot: MatchSnapshot) -> dict[str, Any]:
    """The few match fields an operator looks at."""
    clock = snapshot.clock_seconds
    return {
        "number": snapshot.number or "",
        "status": snapshot.status.value,
        "round": snapshot.round,
        "clock": "" if clock is None else f"{clock // 60}:{clock % 60:02d}",
        "blue": f"{snapshot.blue.name} {snapshot.blue.noc}".strip(),
        "red": f"{snapshot.red.name} {snapshot.red.noc}".strip(),
        "score": f"{snapshot.score.blue} : {snapshot.score.red}",
    }


def log_view(log: TriggerLog) -> dict[str, Any]:
    t = log.trigger
    return {
        "time": ms_to_iso(t.at_ms)[11:19], "trigger": t.kind.value, "source": t.source, "match": t.match_number or "",
        "outcome": log.outcome, "took_ms": log.finished_ms - t.at_ms, "reason": log.reason or "",
        "clip": log.clip_path, "steps": [
            {"step": s.name, "outcome": s.outcome.value, "at_ms": s.at_ms, "detail": s.detail} for s in log.steps
        ],
    }


def message_view(message: DirectorMessage) -> dict[str, Any]:
    """A message of the director as the page shows it."""
    return {"time": ms_to_iso(message.received_ms)[11:19], "priority": message.priority, "kind": message.kind,
            "text": message.text}
