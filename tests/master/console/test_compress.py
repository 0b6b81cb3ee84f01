"""NiceGUI's versioned files are gzipped once and served from memory; everything else as before."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from master.console.compress import VERSIONED_PREFIX, CompressedStatic

pytestmark = pytest.mark.asyncio

SCRIPT = ("const court = 'Court 1';\n" * 4000).encode()  # some 100 KB, like a library


@pytest.fixture
def served(tmp_path: Path) -> tuple[CompressedStatic, list[str]]:
    (tmp_path / "vue.js").write_bytes(SCRIPT)
    (tmp_path / "tiny.js").write_bytes(b"x")
    app = Starlette(routes=[
        Mount(VERSIONED_PREFIX + "static", StaticFiles(directory=tmp_path)),
        Route("/page", lambda _: PlainTextResponse("<div>card</div>" * 200)),
    ])
    asked: list[str] = []

    async def counting(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            asked.append(scope["path"])
        await app(scope, receive, send)

    return CompressedStatic(counting), asked


def _client(middleware: CompressedStatic) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=middleware), base_url="http://console")


async def test_a_library_is_compressed_once_then_served_from_memory(served: tuple[CompressedStatic, list[str]]) -> None:
    middleware, asked = served
    url = VERSIONED_PREFIX + "static/vue.js"
    async with _client(middleware) as client:
        answers = [await client.get(url, headers={"Accept-Encoding": "gzip, deflate"}) for _ in range(3)]
    for answer in answers:
        assert answer.status_code == 200 and answer.headers["content-encoding"] == "gzip"
        assert answer.content == SCRIPT  # httpx decodes it: the browser gets the very file
        assert int(answer.headers["content-length"]) < len(SCRIPT) / 10
        assert "accept-encoding" in answer.headers["vary"].lower() and "etag" not in answer.headers
        assert answer.headers["content-type"].startswith("text/javascript")
    assert asked == [url] and middleware.compressed == 1  # the file was read and compressed once
    assert gzip.decompress(middleware.cache[url].body) == SCRIPT


async def test_what_is_not_a_whole_library_for_a_gzip_browser_passes_as_it_was(
    served: tuple[CompressedStatic, list[str]],
) -> None:
    middleware, asked = served
    url = VERSIONED_PREFIX + "static/vue.js"
    async with _client(middleware) as client:
        plain = await client.get(url, headers={"Accept-Encoding": "identity"})
        part = await client.get(url, headers={"Accept-Encoding": "gzip", "Range": "bytes=0-9"})
        missing = await client.get(VERSIONED_PREFIX + "static/none.js", headers={"Accept-Encoding": "gzip"})
        tiny = await client.get(VERSIONED_PREFIX + "static/tiny.js", headers={"Accept-Encoding": "gzip"})
        page = await client.get("/page", headers={"Accept-Encoding": "gzip"})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers and plain.content == SCRIPT
    assert part.status_code == 206 and part.content == SCRIPT[:10]
    assert missing.status_code == 404 and tiny.content == b"x" and "content-encoding" not in tiny.headers
    assert page.headers["content-encoding"] == "gzip" and page.text == "<div>card</div>" * 200  # GZipMiddleware's
    assert middleware.cache == {} and middleware.compressed == 0
    assert len(asked) == 5
