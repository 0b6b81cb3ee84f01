"""``restrike master ...``: run the venue master, migrate its database, see every court's state."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from master.config import DEFAULT_MASTER_DIR, ConfigError, MasterConfig, load_master_config

__all__ = ["app"]

app = typer.Typer(help="The venue master: every court's events, exactly once, in one database.", no_args_is_help=True)
db_app = typer.Typer(help="The central database.", no_args_is_help=True)
app.add_typer(db_app, name="db")

err = Console(stderr=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config (see deploy/master.example.toml)")]
DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="Database URL, e.g. postgresql+psycopg://user@host/restrike [default: SQLite in the data folder]"),
]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", "-d", help=f"Master data folder [default: {DEFAULT_MASTER_DIR}]")]


def _config(config: Path | None, **overrides: Any) -> MasterConfig:
    try:
        return load_master_config(config, overrides)
    except ConfigError as exc:
        err.print(f"[red]Configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command()
def run(
    config: ConfigOpt = None,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    endpoint: Annotated[
        list[str] | None, typer.Option(help="Court to connect to, HOST:PUB_PORT:ROUTER_PORT (repeatable)")
    ] = None,
    no_mdns: Annotated[bool, typer.Option("--no-mdns", help="Only use the endpoints given")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the master until Ctrl-C or SIGTERM: find courts, store all their events."""
    from master.app import run_master

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    cfg = _config(config, database_url=db, data_dir=data_dir, endpoints=endpoint or None, mdns=False if no_mdns else None)
    try:
        asyncio.run(run_master(cfg))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None, db: DbOpt = None, data_dir: DataDirOpt = None) -> None:
    """Create or migrate the central database schema (safe to run any time)."""
    from master.db.migrate import current_revision, upgrade

    cfg = _config(config, database_url=db, data_dir=data_dir)
    url = cfg.url()
    before = current_revision(url)
    upgrade(url)
    after = current_revision(url)
    err.print(f"Central database at revision {after}" + ("" if before == after else f" (was {before})"))


@app.command()
def status(
    config: ConfigOpt = None,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per court")] = False,
) -> None:
    """Courts known to the master: online or offline, last seq published vs stored, lag."""
    from master.db.migrate import current_revision
    from master.db.store import SQLITE_FILE_NAME, CentralStore

    cfg = _config(config, database_url=db, data_dir=data_dir)
    if cfg.database_url is None and not (cfg.data_dir / SQLITE_FILE_NAME).exists():
        err.print(f"[red]No master database in {cfg.data_dir}[/red]: has `restrike master run` run here? (or pass --db)")
        raise typer.Exit(2)
    if current_revision(cfg.url()) is None:
        err.print("[red]This database has no reStrike VTA schema[/red] (wrong --db?). "
                  "Start `restrike master run` or run `restrike master db upgrade` first.")
        raise typer.Exit(2)
    store = CentralStore(cfg.url())
    try:
        rows = []
        for node in store.list_nodes():
            stored = store.last_seq(node["node_id"], node["epoch"]) if node["epoch"] else 0
            published = node["last_heartbeat_seq"] or 0
            rows.append({
                "node_id": node["node_id"],
                "court": node["court_name"],
                "status": node["status"],
                "last_seen": node["last_seen"].isoformat() if isinstance(node["last_seen"], dt.datetime) else None,
                "epoch": node["epoch"],
                "published_seq": published,
                "stored_seq": stored,
                "lag": max(0, published - stored),
                "events": store.count_events(node["node_id"]),
            })
    finally:
        store.close()
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    table = Table("court", "node", "status", "last seen (UTC)", "published", "stored", "lag", "events")
    for row in rows:
        colour = "green" if row["status"] == "online" else "red"
        table.add_row(
            row["court"] or "?", row["node_id"], f"[{colour}]{row['status']}[/{colour}]",
            (row["last_seen"] or "")[:19], str(row["published_seq"]), str(row["stored_seq"]),
            str(row["lag"]), str(row["events"]),
        )
    Console().print(table)
    if not rows:
        err.print("No court has been seen yet. Is `restrike master run` running, and can it reach the courts?")
