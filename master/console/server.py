"""Run the console on the master's own event loop: one process, one loop, no second signal handler.

uvicorn serves NiceGUI (mounted with ``ui.run_with``) from a socket bound here first, so a
port already in use is a clear error at start-up instead of uvicorn's ``sys.exit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI
from nicegui import ui

from master.accounts import Accounts, AccountStore
from master.app import Master
from master.console.context import ConsoleContext
from master.console.errors import ConsoleUnavailable
from master.console.main import install
from master.db.repository import CentralRepository

__all__ = ["ConsoleServer", "ConsoleUnavailable"]

logger = logging.getLogger(__name__)

_STOP_SECONDS = 5.0


class _InLoopServer(uvicorn.Server):
    """uvicorn without its own signal handling: the master's lifecycle owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ConsoleServer:
    """The web console of one master; at most one per process (NiceGUI's app is process-wide)."""

    def __init__(self, master: Master, host: str, port: int, session_hours: float) -> None:
        self.master = master
        self.host = host
        self.port = port
        self.session_hours = session_hours
        self.accounts: Accounts | None = None
        self.repository: CentralRepository | None = None
        self._server: _InLoopServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    async def async_start(self) -> None:
        sock = self._socket = self._bind()
        self.port = sock.getsockname()[1]
        self.accounts = Accounts(AccountStore(self.master.url), session_seconds=self.session_hours * 3600)
        self.repository = CentralRepository.open(self.master.url)
        api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        install(ConsoleContext(accounts=self.accounts, master=self.master, repository=self.repository))
        ui.run_with(api, title="reStrike VTA", show_welcome_message=False, favicon="🥋", reconnect_timeout=10.0,
                    gzip_middleware_factory=None)  # install() adds CompressedStatic
        config = uvicorn.Config(
            api, log_config=None, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2
        )
        self._server = _InLoopServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="console-http")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise ConsoleUnavailable("the web console stopped while starting (see the log above)")
            await asyncio.sleep(0.02)
        logger.info("Console at %s/ (overlay: %s/overlay)", self.url, self.url)

    async def async_stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            try:
                await asyncio.wait_for(self._task, _STOP_SECONDS)
            except TimeoutError:
                logger.warning("The web console did not stop within %.0f s", _STOP_SECONDS)
        if self._socket is not None:
            self._socket.close()  # uvicorn closes its servers, not a socket it was handed
        if self.accounts is not None:
            self.accounts.close()
        if self.repository is not None:
            self.repository.close()

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise ConsoleUnavailable(
                f"the web console cannot listen on {self.host}:{self.port} ({exc.strerror}); "
                "choose another port with --http-port (0: no console)"
            ) from None
        sock.listen(128)
        sock.setblocking(False)
        return sock
