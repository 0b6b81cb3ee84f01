"""``restrike master clip ...``: fetch a court's replay clip from the terminal, as the IVR desk does."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
import zmq.asyncio
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from master.config import MasterConfig
from runtime.curve import KeyPair
from runtime.errors import OperatorError

__all__ = ["app"]

app = typer.Typer(help="Replay clips: they live on the courts; the master fetches and caches them.", no_args_is_help=True)
err = Console(stderr=True)
_NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class _Court:
    node_id: str
    name: str
    host: str
    router_port: int
    client_keys: KeyPair | None
    server_key: str | None


@app.command()
def fetch(
    node: Annotated[str, typer.Argument(help="The court: node id or court name, as `restrike master status` shows it")],
    path: Annotated[str, typer.Argument(help="The clip on the court: absolute, or relative to its videos root")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Copy the clip here (default: print its path in the cache)")] = None,
    playable: Annotated[bool, typer.Option("--playable", help="The MP4 a browser plays (remuxed, not re-encoded)")] = False,
    timeout: Annotated[float, typer.Option(min=1, help="Give up when the court is silent this many seconds")] = 15.0,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Master TOML config")] = None,
    db: Annotated[str | None, typer.Option("--db", help="Database URL (default: SQLite in the data folder)")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", "-d", help="Master data folder (the cache is its clips/)")] = None,
) -> None:
    """Fetch a replay clip from a court into the master's cache (resuming a cut transfer), with a progress bar.

    The court is reached where the master last saw it; a running master may fetch the same clip
    at the same time (one of them waits for the other).
    """
    from master.cli import _config, _reading
    from master.clips import ClipError
    from master.gate import direct_keys
    from master.services._scope import court_node_ids

    cfg = _config(config, database_url=db, data_dir=data_dir)
    with _reading(config, db, data_dir) as repository:
        nodes = repository.nodes()
        ids = court_node_ids(node, nodes)  # an unknown court: one line naming the known ones
    # A swapped laptop is a second node of the court: the one online, else the one heard last.
    reachable = sorted(
        (row for row in nodes if row.node_id in ids and row.address and row.router_port),
        key=lambda row: (row.status == "online", row.last_seen or _NEVER),
    )
    if not reachable:
        raise OperatorError(f"court {node!r} has no known address yet: the master has not linked to it (see `restrike master status`)", 2)
    row = reachable[-1]
    assert row.address is not None and row.router_port is not None
    court = _Court(row.node_id, row.court_name or row.node_id, row.address, row.router_port,
                   *direct_keys(cfg.curve, cfg.keys_folder, row))
    try:
        clip = asyncio.run(_async_fetch(cfg, court, path, playable, timeout))
    except ClipError as exc:
        raise OperatorError(f"clip not fetched: {exc}", 1) from None
    if out is not None:
        try:
            shutil.copyfile(clip, out)
        except OSError as exc:
            raise OperatorError(f"the clip is fetched ({clip}) but cannot be copied to {out}: {exc.strerror or exc}", 2) from None
        clip = out
    typer.echo(str(clip))


def progress_label(court: str, path: str) -> str:
    """The progress bar's label (Rich markup): the court and the clip's name as they are, brackets and all."""
    return escape(f"{court}: {Path(path).name}")


async def _async_fetch(cfg: MasterConfig, court: _Court, path: str, playable: bool, timeout: float) -> Path:
    from master.clips import ClipFetcher, CourtChannel

    ctx = zmq.asyncio.Context()
    channel = CourtChannel(ctx, court.host, court.router_port, court.name, court.client_keys, court.server_key)
    fetcher = ClipFetcher(
        cfg.data_dir / "clips", lambda _: channel, max_bytes=cfg.clip_cache_mb * 2**20, ffmpeg=cfg.ffmpeg,
        stall_timeout=timeout,
    )
    channel.start(fetcher)
    try:
        with Progress("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=err, transient=True) as bar:
            task = bar.add_task(progress_label(court.name, path), total=None)
            clip = await fetcher.fetch_clip(court.node_id, path, lambda here, total: bar.update(task, completed=here, total=total))
        return await fetcher.playable(clip) if playable else clip
    finally:
        await fetcher.async_close()
        await channel.async_close()
        ctx.destroy(linger=0)
