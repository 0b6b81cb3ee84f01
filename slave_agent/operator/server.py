"""The operator page's web server, on the agent's own event loop: the NiceGUI page and a small JSON API.

``POST /api/replay`` is what ``restrike slave replay`` (a hardware key, a script) calls;
``GET /api/status`` shows what the page shows. Bound to 127.0.0.1 unless configured
otherwise: anyone who reaches it can trigger a replay. NiceGUI keeps its pages in one
process-wide app, so there is one operator page per process (the daemon's).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import socket
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from runtime.lifecycle import log_task_failure
from slave_agent.commands.book import DirectorMessage
from slave_agent.operator.view import RecentEvents, log_view, match_view, message_view

if TYPE_CHECKING:
    from slave_agent.app import SlaveAgent

__all__ = ["OperatorServer"]

logger = logging.getLogger(__name__)

_started_in_process = False


class OperatorServer:
    """Serves the page and the API for one agent until stopped."""

    def __init__(self, agent: SlaveAgent, host: str, port: int):
        self.agent = agent
        self.host = host
        self.port = port
        self.recent = RecentEvents()
        agent.on_commit(self.recent)
        #: The director's latest messages (``restrike master announce``), newest last.
        self.messages: deque[DirectorMessage] = deque(maxlen=5)
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    def status(self) -> dict[str, Any]:
        agent = self.agent
        day = agent.store.day
        director = agent.director
        return {
            "court": agent.config.node.court,
            "node_id": agent.store.node_id,
            "day": f"{day.tournament_name}, day {day.day_number} ({day.date})" if day else None,
            "obs": agent.obs.status().model_dump() if agent.obs else None,
            "match": match_view(agent.store.match_snapshot()),
            "events": self.recent.rows(),
            "triggers": [log_view(log) for log in reversed(director.last_logs[-10:])] if director else [],
            "review_on_air": bool(director and director.on_air),
            "messages": [message_view(m) for m in reversed(self.messages)],
        }

    async def async_follow_messages(self) -> None:
        """Show the director's messages: the last ones stored (a restart keeps them), then each new one."""
        if self.agent.commands is None or self.agent.command_handlers is None:
            return
        self.messages.extend(reversed(await self.agent.commands.book.async_messages(self.messages.maxlen or 5)))
        self.agent.command_handlers.message_listeners.append(self.messages.append)

    async def async_start(self) -> None:
        """Bind and serve in the background; a port in use is said once and the agent goes on without the page."""
        global _started_in_process
        await self.async_follow_messages()
        if _started_in_process:
            logger.warning("An operator page already runs in this process; not starting another for %s",
                           self.agent.config.node.court)
            return
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(64)
        except OSError as exc:
            sock.close()
            logger.warning("The operator page cannot listen on %s:%d (%s); the court runs without it. "
                           "Set [operator] port to a free port.", self.host, self.port, exc.strerror or exc)
            return
        _started_in_process = True
        # NiceGUI and its web stack take a second or more to import: not on the loop ingest runs on.
        for module in ("uvicorn", "fastapi", "nicegui", "slave_agent.operator.page"):
            await asyncio.to_thread(importlib.import_module, module)
        import uvicorn
        from fastapi import FastAPI
        from nicegui import ui

        from slave_agent.operator.page import build_pages

        api = FastAPI(title="reStrike VTA court", openapi_url=None, docs_url=None, redoc_url=None)
        api.add_api_route("/api/status", self.status, methods=["GET"])
        api.add_api_route("/api/replay", self.async_replay, methods=["POST"])
        api.add_api_route("/api/review-over", self._async_review_over, methods=["POST"])
        build_pages(self)
        ui.run_with(api, title=f"reStrike · {self.agent.config.node.court}", show_welcome_message=False,
                    reconnect_timeout=10.0)
        config = uvicorn.Config(api, log_level="warning", lifespan="on", access_log=False)
        self._server = _embedded_server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="operator-page")
        self._task.add_done_callback(log_task_failure(logger))
        logger.info("Operator page on http://%s:%d/", self.host, self.port)

    async def async_stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await asyncio.gather(self._task, return_exceptions=True)

    async def async_replay(self) -> dict[str, Any]:
        """The REPLAY button and ``POST /api/replay``: runs the replay, returns its outcome."""
        if self.agent.director is None:
            return {"outcome": "skipped", "reason": "the replay director is not running"}
        return log_view(await self.agent.director.async_replay("operator"))

    async def _async_review_over(self) -> dict[str, Any]:
        if self.agent.director is None:
            return {"outcome": "skipped", "reason": "the replay director is not running"}
        return log_view(await self.agent.director.async_review_over("operator"))


def _embedded_server(config: Any) -> Any:
    """uvicorn's server without its signal handling: the agent's lifecycle owns SIGINT/SIGTERM."""
    import uvicorn

    class EmbeddedServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return EmbeddedServer(config)
