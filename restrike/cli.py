"""``restrike``: one command for the court agent, the master, the PSS tools and the demo."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from master import cli as master_cli
from restrike import __version__, pss_cli
from slave_agent import cli as slave_cli

__all__ = ["app", "main"]

app = typer.Typer(
    help="reStrike VTA: broadcast and instant replay for taekwondo tournaments.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(slave_cli.app, name="slave")
app.add_typer(master_cli.app, name="master")
app.add_typer(pss_cli.app, name="pss")

bench_app = typer.Typer(help="Benchmarks that print JSON: ingest into SQLite, and the pipeline to the master.")
app.add_typer(bench_app, name="bench")
_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def _run_bench(command: str, args: list[str]) -> None:
    """The benchmarks load heavy modules: import them only when one runs (keeps every other command light)."""
    from restrike import bench

    if command == "pipeline":  # its imports (the master, SQLAlchemy) would weigh on the ingest figures
        from restrike import bench_pipeline

        bench_pipeline.register(bench.app)
    bench.app([command, *args], prog_name="restrike bench")


@bench_app.command(context_settings=_PASS_THROUGH, add_help_option=False)
def ingest(ctx: typer.Context) -> None:
    """UDP -> SQLite: zero-loss rate, latency, RSS, writer cost (JSON). `restrike bench ingest --help` for options."""
    _run_bench("ingest", ctx.args)


@bench_app.command(context_settings=_PASS_THROUGH, add_help_option=False)
def pipeline(ctx: typer.Context) -> None:
    """Court -> master: latency, 8-court rate, catch-up (JSON). `restrike bench pipeline --help` for options."""
    _run_bench("pipeline", ctx.args)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"restrike {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit"),
) -> None:
    """reStrike VTA: broadcast and instant replay for taekwondo tournaments."""


@app.command()
def demo(
    courts: Annotated[int, typer.Option(min=1, max=8, help="Simulated courts")] = 2,
    speed: Annotated[float, typer.Option(min=0.1, max=1000, help="Simulated time runs this many times faster")] = 10.0,
    duration: Annotated[float, typer.Option(min=0, help="Stop after this many seconds (0 = until Ctrl-C)")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the simulated matches")] = 1,
    data_dir: Annotated[Path, typer.Option("--data-dir", "-d", help="Where the demo keeps its databases (wiped at start)")] = Path("data/demo"),
    plain: Annotated[bool, typer.Option("--plain", help="No live view (logs only)")] = False,
) -> None:
    """A venue on this machine: simulated courts -> slave agents (SQLite) -> master (SQLite), live."""
    from restrike.demo import run_demo

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    console = Console(stderr=True)
    try:
        result = asyncio.run(run_demo(data_dir, courts=courts, speed=speed, duration=duration, seed=seed, live=not plain))
    except KeyboardInterrupt:
        console.print("Stopped.")
        return
    for court, stored in result.stored_by_courts.items():
        console.print(f"{court}: {stored} events stored at the court, {result.stored_by_master[court]} at the master")
    if not result.nothing_lost:
        console.print("[red]The master is missing events.[/red]")
        raise typer.Exit(1)
    console.print(f"[green]Nothing lost.[/green] Databases are in {data_dir}/ (try `restrike slave events -d {data_dir}/court1`).")


def main() -> None:
    """Console-script entry point."""
    app()
