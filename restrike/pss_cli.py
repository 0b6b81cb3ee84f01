"""``restrike pss``: parse, simulate and replay PSS (WT UDP) traffic without a court."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from restrike import sender
from shared.pss.parser import parse_datagram
from shared.pss.simulator import DEFAULT_PORT, simulate_session

__all__ = ["app"]

app = typer.Typer(
    help="PSS (WT UDP scoring protocol) tools: parse lines to JSON, simulate matches, "
    "replay traffic to a UDP listener.",
    no_args_is_help=True,
)


class SenderKind(StrEnum):
    """Which TkStrike generation's habits the simulator copies."""

    GEN2 = "gen2"
    GEN3 = "gen3"


@app.command()
def parse() -> None:
    """Parse protocol lines from stdin into JSON, one object per line.

    Each input line is one datagram, read as bytes: invalid UTF-8 is reported,
    never fatal. Empty lines are skipped.

    Output keys: raw, code, category, valid, error, fields.

    Example: restrike pss parse < capture.txt | jq 'select(.valid|not)'
    """
    out = sys.stdout.buffer
    try:
        for row in sys.stdin.buffer:
            datagram = row.rstrip(b"\n")
            if not datagram.strip():
                continue
            for event in parse_datagram(datagram):
                text = json.dumps(event.as_dict(), ensure_ascii=False)
                out.write(text.encode("utf-8", "backslashreplace") + b"\n")
            out.flush()
    except BrokenPipeError:
        # The reader (head, less) has gone; that ends the job, it is not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None


@app.command()
def simulate(
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same traffic.")] = 0,
    matches: Annotated[int, typer.Option(min=1, help="Matches to play, one after another.")] = 1,
    round_seconds: Annotated[
        int,
        typer.Option(min=5, help="Round length in seconds (120 in WT rules; 20 for quick tests)."),
    ] = 120,
    break_seconds: Annotated[int, typer.Option(min=1, help="Break between rounds in seconds.")] = 60,
    sender_kind: Annotated[
        SenderKind,
        typer.Option("--sender", help="Copy TkStrike Gen3 (the sample's load order) or Gen2 habits."),
    ] = SenderKind.GEN3,
    port: Annotated[
        int,
        typer.Option(min=1, max=65535, help="Port named in the 'Udp Port N connected;' line."),
    ] = DEFAULT_PORT,
    tsv: Annotated[
        bool,
        typer.Option(help="Write the sample capture's format (timestamp, V, line) with timing."),
    ] = False,
    start: Annotated[
        datetime | None,
        typer.Option(
            help="First timestamp of --tsv output (default: now).",
            formats=["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"],
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(dir_okay=False, writable=True, help="Write here instead of stdout."),
    ] = None,
) -> None:
    """Generate realistic best-of-3 matches as protocol lines.

    Plain output is one protocol line per line (replay it with 'pss send --interval');
    --tsv keeps the timing, so 'pss send' replays it at match speed.
    """
    session = simulate_session(
        seed,
        matches,
        sender=sender_kind.value,
        round_seconds=round_seconds,
        break_seconds=break_seconds,
        port=port,
    )
    if tsv:
        origin = start or datetime.now().replace(microsecond=0)
        header = [
            f"# SIMULATED by restrike pss simulate --seed {seed} --matches {matches} "
            f"--round-seconds {round_seconds} --sender {sender_kind.value}",
            "# Columns: log_timestamp<TAB>V|R<TAB>line",
        ]
        rows = header + [
            sender.tsv_line(origin + timedelta(seconds=at), line) for at, line in session.lines
        ]
    else:
        rows = [line for _, line in session.lines]
    text = "".join(f"{row}\n" for row in rows)
    if out is None:
        sys.stdout.buffer.write(text.encode("utf-8"))
        sys.stdout.buffer.flush()
    else:
        out.write_text(text, encoding="utf-8")
        summary = ", ".join(
            f"{m.match_number} {m.winner} {m.rounds_won[0]}-{m.rounds_won[1]}" for m in session.matches
        )
        Console(stderr=True).print(f"wrote {len(rows)} lines to {out} ({summary})", highlight=False)


@app.command()
def send(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="Plain protocol lines or a TSV capture."
        ),
    ],
    to: Annotated[
        str,
        typer.Option("--to", help="Where to send: HOST:PORT, [IPv6]:PORT or a broadcast address."),
    ],
    speed: Annotated[
        str, typer.Option(help="Playback speed factor (2 = twice as fast), or 'max' for no pauses.")
    ] = "1",
    interval: Annotated[
        float,
        typer.Option(min=0, help="Milliseconds between datagrams of a plain file (TSV has timing)."),
    ] = 0.0,
    max_gap: Annotated[
        float | None,
        typer.Option(min=0, help="Shorten pauses longer than this many seconds (captures span days)."),
    ] = None,
    loop: Annotated[bool, typer.Option(help="Start again from the top until Ctrl-C.")] = False,
    crlf: Annotated[
        bool, typer.Option(help="End every datagram with CRLF, as TkStrike Gen2 does.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    listen_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Answer pull requests (clock, scores, ...) on this UDP port with the last packet of "
            "each kind sent, as TkStrike Gen2 does on its listen port.",
        ),
    ] = None,
    hold: Annotated[
        bool,
        typer.Option(help="After the last datagram keep answering pull requests until Ctrl-C (needs --listen-port)."),
    ] = False,
) -> None:
    """Replay a file as UDP datagrams, one line per datagram, to feed a listener.

    The sample capture's TSV format is detected by itself and replayed with its
    original timing divided by --speed. Progress goes to stderr, the summary to stdout.
    With --listen-port it also answers a court agent's pull requests (its resynchronisation).
    """
    if hold and listen_port is None:
        raise typer.BadParameter("--hold keeps answering pull requests: give --listen-port too", param_hint="--hold")
    try:
        host, port = sender.parse_target(to)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--to") from None
    factor = _speed(speed)
    try:
        replay = sender.read_replay(file, interval=interval / 1000, max_gap=max_gap)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="FILE") from None
    try:
        sock, address = sender.open_udp(host, port)
    except OSError as exc:
        raise typer.BadParameter(f"cannot send to {host}:{port}: {exc}", param_hint="--to") from None
    stderr = Console(stderr=True)
    responder = None
    if listen_port is not None:
        try:
            responder = sender.PullResponder("0.0.0.0", listen_port).start()
        except OSError as exc:
            sock.close()
            raise typer.BadParameter(f"cannot listen on UDP {listen_port}: {exc}", param_hint="--listen-port") from None
        stderr.print(f"answering pull requests on UDP port {listen_port}", highlight=False)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        disable=quiet,
    )
    task = progress.add_task(f"{file.name} -> {to}", total=len(replay.items))

    sent = 0

    def on_sent(index: int, pass_number: int) -> None:
        nonlocal sent
        sent += 1
        label = f"{file.name} -> {to}" + (f" (pass {pass_number})" if loop else "")
        progress.update(task, completed=index, description=label)

    interrupted = False
    started = time.monotonic()
    # With a responder thread to close, SIGTERM (a service manager, a test) stops like Ctrl-C.
    previous_term = signal.signal(signal.SIGTERM, _interrupt) if responder is not None else None
    try:
        with sock, progress:
            try:
                result = sender.send_replay(
                    sock,
                    address,
                    replay.items,
                    speed=factor,
                    loop=loop,
                    suffix=b"\r\n" if crlf else b"",
                    on_sent=on_sent,
                    responder=responder,
                )
            except KeyboardInterrupt:
                interrupted = True
                result = sender.SendResult(sent, time.monotonic() - started, 0)
            except OSError as exc:
                raise typer.BadParameter(f"sending to {to} failed: {exc}", param_hint="--to") from None
        if hold and not interrupted:
            try:  # a stop may come the moment "holding" is out
                typer.echo(f"sent {result.sent} datagrams to {to}; holding: answering pull requests until Ctrl-C", err=True)
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass  # the normal end of --hold
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
        if responder is not None:
            responder.close()
            stderr.print(f"answered {responder.answers} packets to {responder.requests} pull requests", highlight=False)
    if interrupted:
        typer.echo(f"interrupted: sent {result.sent} datagrams to {to} in {result.elapsed:.2f} s")
        raise typer.Exit(130)
    typer.echo(
        f"sent {result.sent} datagrams ({replay.format}, {result.passes} pass"
        f"{'es' if result.passes != 1 else ''}) to {to} in {result.elapsed:.2f} s"
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _speed(text: str) -> float | None:
    """``max`` means as fast as possible (None); otherwise a positive factor."""
    if text.strip().lower() == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise typer.BadParameter(
            f"expected a number or 'max', got {text!r}", param_hint="--speed"
        ) from None
    if not value > 0:
        raise typer.BadParameter("must be greater than 0", param_hint="--speed")
    return value
