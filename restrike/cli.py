"""``restrike``: one command for the court agent, the master, the PSS tools and the demo."""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from master import cli as master_cli
from restrike import keys_cli, pss_cli
from runtime import __version__
from runtime.errors import OperatorError
from slave_agent import cli as slave_cli

__all__ = ["app", "main"]

#: Accepted anywhere on the command line, so an operator can add it to the command that failed.
DEBUG_FLAG = "--debug"

app = typer.Typer(
    help="reStrike VTA: broadcast and instant replay for taekwondo tournaments.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: flags without a value show no "<bool>", and it fits 80 columns
)
app.add_typer(slave_cli.app, name="slave")
app.add_typer(master_cli.app, name="master")
app.add_typer(pss_cli.app, name="pss")
app.add_typer(keys_cli.app, name="keys")

bench_app = typer.Typer(help="Benchmarks: numbers as JSON on stdout, progress on stderr, loopback only.")
app.add_typer(bench_app, name="bench")
_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}

#: ``restrike bench NAME`` runs ``restrike.bench.NAME.register``'s command; the one-line help shown here.
BENCHMARKS = {
    "ingest": "UDP -> SQLite: zero-loss rate, latency, RSS, writer cost.",
    "pipeline": "Court -> master: latency, 8-court rate, catch-up.",
    "live": "Master's live match per court: cost per event vs decoding it.",
    "clips": "Replay clip court -> master: throughput vs raw pyzmq, time to first playable.",
    "ivr": "Challenge -> replay on air at a court (real OBS, mpv): p50/p95 vs the bare obsws chain.",
    "outage": "Master's memory through a central-database outage (8 courts x 100/s, 5 min).",
    "console": "Datagram at a court -> score in the overlay's DOM in Chromium (8 courts x 10/s), courts page first paint.",
    "control": "Director's command round trip (one court, bulk to 8), CURVE vs plain, vs raw DEALER/ROUTER.",
}


def _bench_command(name: str, summary: str) -> None:
    """A pass-through command that imports its benchmark only when run (benchmarks load heavy
    modules, and one benchmark's imports would weigh on another's figures)."""

    def command(ctx: typer.Context) -> None:
        module = importlib.import_module(f"restrike.bench.{name}")
        group = typer.Typer(pretty_exceptions_enable=False)
        group.callback()(lambda: None)  # a group even with one command, so NAME is read as its name
        module.register(group)
        group([name, *ctx.args], prog_name="restrike bench")

    command.__doc__ = f"{summary} `restrike bench {name} --help` for options."
    bench_app.command(name, context_settings=_PASS_THROUGH, add_help_option=False)(command)


for _name, _summary in BENCHMARKS.items():
    _bench_command(_name, _summary)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"restrike {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit"),
    debug: bool = typer.Option(False, DEBUG_FLAG, help="Show the traceback of an error (may be given anywhere on the line)"),
) -> None:
    """reStrike VTA: broadcast and instant replay for taekwondo tournaments."""


@app.command()
def demo(
    courts: Annotated[int, typer.Option(min=1, max=8, help="Simulated courts")] = 2,
    speed: Annotated[float, typer.Option(min=0.1, max=1000, help="Simulated time runs this many times faster")] = 10.0,
    duration: Annotated[float, typer.Option(min=0, help="Stop after this many seconds (0 = until Ctrl-C)")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the simulated matches")] = 1,
    data_dir: Annotated[Path, typer.Option("--data-dir", "-d", help="Where the demo keeps its databases (wiped at start)")] = Path("data/demo"),
    plain: Annotated[bool, typer.Option("--plain", help="No live view: a progress line every few seconds")] = False,
    http_port: Annotated[int, typer.Option("--http-port", min=0, max=65535, help="Web console port (0: none; taken: any free one)")] = 8080,
) -> None:
    """A venue on this machine: simulated courts -> slave agents (SQLite) -> master (SQLite), live.

    Ctrl-C (or SIGTERM) stops the senders, lets the last events reach the master, and says whether
    anything was lost.
    """
    from restrike.demo import DRAIN_SECONDS, run_demo

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The demo's courts run without OBS on purpose: "OBS_REC is not configured" at every match is expected here.
    logging.getLogger("slave_agent.obs").setLevel(logging.ERROR)
    out = Console()
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    live = not plain and out.is_terminal  # piped or logged: progress lines instead of a view
    try:
        result = asyncio.run(run_demo(data_dir, courts=courts, speed=speed, duration=duration, seed=seed, console=out, live=live,
                                     http_port=http_port))
    except KeyboardInterrupt:  # a second Ctrl-C while the last events were on their way
        console.print(f"Stopped at once: the check (up to {DRAIN_SECONDS:.0f} s) was skipped.")
        raise typer.Exit(130) from None
    if result.interrupted:
        console.print("Stopped: the senders are off and what was under way has been stored.")
    for court, count in result.courts.items():
        missing = "" if count.received == count.sent else f" (the court received only {count.received})"
        console.print(f"{court}: sent {count.sent}, stored {count.stored} at the court, {count.at_master} at the master{missing}")
    if result.restart_error is not None:
        console.print(Text(f"Court 1's agent could not be restarted mid-session: {result.restart_error}", style="red"))
        raise typer.Exit(1)
    if result.resync_answers is not None:
        console.print(f"Court 1's agent was restarted mid-session and resynchronised from {result.resync_answers} "
                      "answers of its scoring software.")
    if not result.nothing_lost:
        console.print("[red]Something was lost[/red] (see the numbers above).")
        raise typer.Exit(1)
    console.print("[green]Nothing lost.[/green]")
    console.print(f"The databases are in {data_dir}/: try `restrike slave events -d {data_dir}/court1`")


def _fail(heading: str, message: str, exit_code: int) -> NoReturn:
    line = Text.assemble((f"{heading}: ", "bold red"), message)
    Console(stderr=True).print(line, soft_wrap=True)
    sys.exit(exit_code)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: an error is one or two lines; its traceback only with ``--debug``."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in args
    args = [arg for arg in args if arg != DEBUG_FLAG]
    try:
        app(args, prog_name="restrike")
    except OperatorError as exc:
        if debug:
            traceback.print_exc()
        _fail(exc.heading, str(exc), exc.exit_code)
    except Exception as exc:
        if debug:
            raise
        _fail("Unexpected error", f"{type(exc).__name__}: {exc} (run the same command with --debug to see where, and report it)", 1)
