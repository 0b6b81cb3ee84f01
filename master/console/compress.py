"""Gzip for the console without compressing the same megabyte on the event loop at every first visit.

NiceGUI's own files (Vue, Quasar, Tailwind, its components: about 1 MB of JavaScript and CSS)
live under a path carrying NiceGUI's version, so they never change while the master runs.
Starlette's GZipMiddleware, NiceGUI's default, compressed them again for every browser that
loaded the console cold, at level 9, mostly on the master's event loop: some 60 ms of CPU per
visit, taken from the courts' events and the overlay's scores. Here each is compressed once,
in a thread, and served from memory afterwards. Every other response (pages, the IVR's clips,
which Starlette leaves alone as video) goes through GZipMiddleware as before.
"""

from __future__ import annotations

import asyncio
import gzip
from dataclasses import dataclass

from nicegui import __version__ as nicegui_version
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CompressedStatic"]

#: NiceGUI's versioned files: the same bytes for as long as this NiceGUI is installed.
VERSIONED_PREFIX = f"/_nicegui/{nicegui_version}/"
#: Larger files are not kept in memory (NiceGUI's largest one that pages load is about 0.5 MB).
MAX_CACHED_BYTES = 8 * 1024 * 1024
#: Smaller ones are not worth compressing (as GZipMiddleware's own minimum).
MIN_COMPRESSED_BYTES = 500


@dataclass(frozen=True, slots=True)
class _Compressed:
    headers: list[tuple[bytes, bytes]]
    body: bytes


class CompressedStatic:
    """ASGI middleware: NiceGUI's versioned files gzipped once and kept; the rest as GZipMiddleware does."""

    def __init__(self, app: ASGIApp, compresslevel: int = 9) -> None:
        self.app = app
        self.compresslevel = compresslevel
        self.fallback = GZipMiddleware(app, minimum_size=MIN_COMPRESSED_BYTES, compresslevel=6)
        self.cache: dict[str, _Compressed] = {}
        self.compressed = 0
        """How many files were compressed (each once, unless two browsers asked at the same moment)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _cacheable_request(scope):
            await self.fallback(scope, receive, send)
            return
        cached = self.cache.get(scope["path"])
        if cached is None:
            cached = await self._async_compress(scope, receive, send)
            if cached is None:
                return  # answered as it was (an error, already encoded, too small or too big)
        await send({"type": "http.response.start", "status": 200, "headers": cached.headers})
        await send({"type": "http.response.body", "body": cached.body})

    async def _async_compress(self, scope: Scope, receive: Receive, send: Send) -> _Compressed | None:
        """The file's response, compressed in a thread and kept; None after sending it unchanged."""
        messages: list[Message] = []

        async def keep(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, keep)
        start, bodies = messages[0], [m for m in messages[1:] if m["type"] == "http.response.body"]
        body = b"".join(m.get("body", b"") for m in bodies)
        headers = MutableHeaders(raw=list(start.get("headers", [])))
        if (start["status"] != 200 or "content-encoding" in headers
                or not MIN_COMPRESSED_BYTES <= len(body) <= MAX_CACHED_BYTES):
            for message in messages:
                await send(message)
            return None
        packed = await asyncio.to_thread(gzip.compress, body, self.compresslevel, mtime=0)
        del headers["content-length"]
        if "etag" in headers:  # the compressed bytes are another representation of the file
            del headers["etag"]
        headers["content-encoding"] = "gzip"
        headers["content-length"] = str(len(packed))
        headers.add_vary_header("Accept-Encoding")
        compressed = _Compressed(headers.raw, packed)
        self.cache[scope["path"]] = compressed
        self.compressed += 1
        return compressed


def _cacheable_request(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].startswith(VERSIONED_PREFIX):
        return False
    headers = Headers(scope=scope)
    return "gzip" in headers.get("accept-encoding", "") and "range" not in headers
