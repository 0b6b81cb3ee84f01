"""A TCP forwarder that can be cut: a database outage for one client, on a shared server.

The machine's PostgreSQL serves every developer's tests at once, so an outage test must not
stop it. A master pointed at this proxy instead sees exactly what a stopped or unreachable
server looks like: open connections die at once (reset), new ones are closed as soon as
they are accepted, and nothing else on the machine notices. :meth:`TcpProxy.restore` lets
connections through again.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["TcpProxy"]

T = TypeVar("T")

_CHUNK = 256 * 1024


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to a target, on its own thread and event loop."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.cut_connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._open = True

    def start(self) -> TcpProxy:
        self._thread.start()
        self._server = self._run(asyncio.start_server(self._async_serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def cut(self) -> int:
        """The database is gone: reset every open connection, close new ones. Returns how many were reset."""
        return self._run(self._async_cut())

    def restore(self) -> None:
        """The database is back: new connections are forwarded again."""
        self._run(self._async_set_open())

    def stop(self) -> None:
        if self._thread.is_alive():
            self._run(self._async_cut())
            if self._server is not None:
                self._server.close()
                self._run(self._server.wait_closed())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    async def _async_set_open(self) -> None:
        self._open = True

    async def _async_cut(self) -> int:
        self._open = False
        writers, self._writers = self._writers, set()
        for writer in writers:
            _reset(writer)
        self.cut_connections += len(writers)
        return len(writers)

    async def _async_serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if not self._open:
            _reset(client_writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(client_writer)
            return
        pair = {client_writer, upstream_writer}
        self._writers |= pair
        try:
            await asyncio.gather(
                _pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer), return_exceptions=True
            )
        finally:
            self._writers -= pair
            for writer in pair:
                writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(_CHUNK):
        writer.write(data)
        await writer.drain()
    with contextlib.suppress(OSError):
        writer.write_eof()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset, as a dead server's host answers, rather than an orderly goodbye."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
