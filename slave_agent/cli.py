"""``restrike slave ...``: run a court's agent and look into its database."""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from shared.records import EventRecord
from slave_agent.config import DEFAULT_DATA_DIR, ConfigError, SlaveConfig, load_config
from slave_agent.db.store import EventFilter, EventStore

__all__ = ["app"]

app = typer.Typer(help="The court slave agent: PSS ingest into SQLite, and its tools.", no_args_is_help=True)
tournament_app = typer.Typer(help="Tournaments and days: the context every stored event carries.", no_args_is_help=True)
app.add_typer(tournament_app, name="tournament")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config file (see deploy/slave.example.toml)", exists=False),
]
DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", "-d", help=f"Folder of the SQLite database [default: {DEFAULT_DATA_DIR}]")
]

err = Console(stderr=True)


def _config(config: Path | None, overrides: dict[str, Any]) -> SlaveConfig:
    try:
        return load_config(config, overrides)
    except ConfigError as exc:
        err.print(f"[red]Configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


def _open_store(config: Path | None, data_dir: Path | None) -> EventStore:
    cfg = _config(config, {"data_dir": data_dir})
    return EventStore(cfg.data_dir, node_id=cfg.node.node_id)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.command()
def run(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    udp_port: Annotated[int | None, typer.Option(help="UDP port for the scoring software [default: 8888]")] = None,
    udp_host: Annotated[str | None, typer.Option(help="Address to listen on [default: 0.0.0.0]")] = None,
    court: Annotated[str | None, typer.Option(help="Court name shown at the master")] = None,
    node_id: Annotated[str | None, typer.Option(help="Stable node id (kept in the database when unset)")] = None,
    pub_port: Annotated[int | None, typer.Option(help="ZeroMQ PUB port [default: 5570]")] = None,
    router_port: Annotated[int | None, typer.Option(help="ZeroMQ ROUTER port [default: 5571]")] = None,
    no_mdns: Annotated[bool, typer.Option("--no-mdns", help="Do not advertise over mDNS")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging")] = False,
) -> None:
    """Run the court agent until Ctrl-C or SIGTERM: listen for PSS, store every event, publish it."""
    from slave_agent.app import run_agent

    _setup_logging(verbose)
    overrides: dict[str, Any] = {
        "data_dir": data_dir,
        "udp": {"port": udp_port, "host": udp_host},
        "node": {"court": court, "node_id": node_id},
        "publisher": {"pub_port": pub_port, "router_port": router_port, "mdns": False if no_mdns else None},
    }
    cfg = _config(config, overrides)
    try:
        asyncio.run(run_agent(cfg))
    except OSError as exc:
        err.print(f"[red]Cannot start:[/red] {exc}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@app.command("validate-config")
def validate_config(config: Annotated[Path, typer.Argument(help="TOML config file to check")]) -> None:
    """Check a config file and print the settings it results in."""
    cfg = _config(config, {})
    typer.echo(cfg.model_dump_json(indent=2))
    err.print("[green]Configuration is valid.[/green]")


def _parse_time(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO date/time such as 2025-07-28T15:40:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _event_json(record: EventRecord) -> dict[str, Any]:
    data = record.model_dump(mode="json", exclude={"raw_datagram"})
    data["timestamp"] = record.timestamp
    data["raw_datagram"] = record.raw_datagram.decode("utf-8", "backslashreplace")
    data["event_code"] = record.code
    return data


@app.command()
def events(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    output_format: Annotated[str, typer.Option("--format", "-f", help="table, json (one object per line) or csv")] = "table",
    session: Annotated[int | None, typer.Option(help="Only events inside this OBS session (id)")] = None,
    tournament: Annotated[str | None, typer.Option(help="Tournament name or UUID")] = None,
    day: Annotated[str | None, typer.Option(help="Day: UUID, TOURNAMENT:N, or N of the active tournament")] = None,
    match: Annotated[str | None, typer.Option(help="Match number, e.g. 101 or 245.A")] = None,
    category: Annotated[list[str] | None, typer.Option(help="Category (repeatable): P TB H TH K W C I B CLK RND WIN R O")] = None,
    since: Annotated[str | None, typer.Option(help="From this UTC time (ISO 8601)")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this UTC time (ISO 8601)")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many events (the first ones)")] = None,
) -> None:
    """Print stored events, oldest first."""
    if output_format not in ("table", "json", "csv"):
        raise typer.BadParameter("choose table, json or csv", param_hint="--format")
    store = _open_store(config, data_dir)
    try:
        flt = EventFilter(
            session_id=session,
            tournament=tournament,
            day=day,
            match_number=match,
            categories=tuple(category or ()),
            since_ms=_parse_time(since),
            until_ms=_parse_time(until),
            limit=limit,
        )
        rows = store.events(flt)
    except LookupError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        store.close()
    if output_format == "json":
        for record in rows:
            sys.stdout.write(json.dumps(_event_json(record), ensure_ascii=False) + "\n")
    elif output_format == "csv":
        columns = ["seq", "timestamp", "event_code", "event_category", "valid", "match_number", "str_timestamp",
                   "rec_timestamp", "ivr_link", "error", "raw"]
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for record in rows:
            writer.writerow(_event_json(record))
    else:
        table = Table("seq", "time (UTC)", "code", "cat", "match", "stream", "raw", "problem")
        for record in rows:
            table.add_row(
                str(record.seq), record.timestamp[11:23], record.code, record.event_category,
                record.match_number or "", record.str_timestamp or "", record.raw,
                "" if record.valid else f"[red]{record.error}[/red]",
            )
        Console().print(table)
        err.print(f"{len(rows)} event(s)")


@tournament_app.command("create")
def tournament_create(
    name: Annotated[str, typer.Argument(help="Tournament name")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    location: Annotated[str | None, typer.Option(help="Venue")] = None,
    days: Annotated[int, typer.Option(min=1, max=30, help="Number of days to create")] = 1,
    start_date: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD [default: today]")] = None,
    uuid: Annotated[str | None, typer.Option(help="Reuse the master's tournament UUID")] = None,
    activate: Annotated[bool, typer.Option(help="Make day 1 the active day")] = True,
) -> None:
    """Create a tournament with its days (and make day 1 active)."""
    from datetime import date, timedelta

    try:
        first = date.fromisoformat(start_date) if start_date else date.today()
    except ValueError:
        raise typer.BadParameter("use YYYY-MM-DD", param_hint="--start-date") from None
    store = _open_store(config, data_dir)
    try:
        t_uuid = store.create_tournament(
            name, location=location, start_date=first.isoformat(),
            end_date=(first + timedelta(days=days - 1)).isoformat(), tournament_uuid=uuid,
        )
        for number in range(1, days + 1):
            store.add_day(t_uuid, number, (first + timedelta(days=number - 1)).isoformat())
        if activate:
            store.activate_day(t_uuid, 1)
    finally:
        store.close()
    typer.echo(t_uuid)
    err.print(f"Created {name!r} ({days} day(s)){', day 1 active' if activate else ''}.")


@tournament_app.command("activate")
def tournament_activate(
    tournament: Annotated[str, typer.Argument(help="Tournament name or UUID")],
    day: Annotated[int, typer.Argument(min=1, help="Day number")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Make a tournament day the context of every event stored from now on."""
    store = _open_store(config, data_dir)
    try:
        ctx = store.activate_day(tournament, day)
    except LookupError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        store.close()
    err.print(f"Active: {ctx.tournament_name} day {ctx.day_number} ({ctx.date}); a running agent follows within seconds.")


@tournament_app.command("list")
def tournament_list(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Tournaments and their days; the active day is marked."""
    store = _open_store(config, data_dir)
    try:
        items = store.tournaments()
    finally:
        store.close()
    table = Table("tournament", "day", "date", "active", "uuid")
    for t in items:
        for d in t["days"] or [{"day_number": "", "date": "", "uuid": t["uuid"], "active": False}]:
            table.add_row(t["name"], str(d["day_number"]), d["date"], "●" if d["active"] else "", d["uuid"])
    Console().print(table)


@app.command()
def chapters(
    day: Annotated[str, typer.Option(help="Day: UUID, TOURNAMENT:N, or N of the active tournament")],
    out: Annotated[Path | None, typer.Option(help="Write the chapter list here (stdout when unset)")] = None,
    intro: Annotated[str, typer.Option(help="Title of the 0:00 chapter when no match starts there")] = "Start",
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Export a day's YouTube chapters (H:MM:SS Title); says what it merged or dropped."""
    from shared.chapters import render
    from slave_agent.db.chapters import day_chapters

    store = _open_store(config, data_dir)
    try:
        plan = day_chapters(store.conn, store.day_id(day), intro)
    except LookupError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        store.close()
    for note in plan.notes:
        err.print(f"[yellow]note:[/yellow] {note}")
    if not plan.valid:
        err.print(f"[red]No chapter list YouTube would accept:[/red] {plan.problem}")
        raise typer.Exit(1)
    text = render(plan)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        err.print(f"Wrote {len(plan.chapters)} chapters to {out}")


session_app = typer.Typer(
    help="OBS stream/recording sessions of a day (the OBS integration drives these; by hand for repairs).",
    no_args_is_help=True,
)
app.add_typer(session_app, name="session")

SessionTypeArg = Annotated[str, typer.Argument(help="stream, recording or replay_buffer")]
DayOpt = Annotated[str | None, typer.Option(help="Day (UUID, TOURNAMENT:N or N) [default: the active day]")]


def _signed_hms(seconds: float) -> str:
    """A session's start in stream time; negative after a large negative correction."""
    from shared.stream_time import format_hms

    return format_hms(seconds) if seconds >= 0 else "-" + format_hms(-seconds)


def _reason(value: str) -> Any:
    from shared.stream_time import InterruptionReason

    try:
        return InterruptionReason(value)
    except ValueError:
        raise typer.BadParameter(f"choose one of: {', '.join(r.value for r in InterruptionReason)}") from None


def _session_type(value: str) -> Any:
    from shared.stream_time import SessionType

    try:
        return SessionType(value)
    except ValueError:
        raise typer.BadParameter("choose stream, recording or replay_buffer") from None


def _session_day(store: EventStore, day: str | None) -> int:
    if day is not None:
        return store.day_id(day)
    if store.day is None:
        err.print("[red]No active tournament day; pass --day or activate one.[/red]")
        raise typer.Exit(2)
    return store.day.day_id


@session_app.command("start")
def session_start(
    kind: SessionTypeArg,
    day: DayOpt = None,
    reason: Annotated[str, typer.Option(help="Why a still-open session ended")] = "manual_stop",
    at: Annotated[str | None, typer.Option(help="When it started (UTC, ISO 8601) [default: now]")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Start the next session (an open one is ended first with --reason); events in it are restamped."""
    from slave_agent.db.sessions import SessionBook

    store = _open_store(config, data_dir)
    try:
        day_id = _session_day(store, day)
        book = SessionBook(store.conn)
        session = book.start(day_id, _session_type(kind), _parse_time(at), previous_ended_because=_reason(reason))
        book.recalculate_day(day_id)
    finally:
        store.close()
    err.print(f"{kind} session {session.number} started; its time continues at {_signed_hms(session.cumulative_offset_seconds)}")


@session_app.command("end")
def session_end(
    kind: SessionTypeArg,
    day: DayOpt = None,
    reason: Annotated[str | None, typer.Option(help="laptop_restart, obs_crash, manual_stop, network_loss, agent_restart, day_end")] = None,
    at: Annotated[str | None, typer.Option(help="When it ended (UTC, ISO 8601) [default: now]")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """End the running session of a type (now, or at --at); the day's events are restamped."""
    from slave_agent.db.sessions import SessionBook

    store = _open_store(config, data_dir)
    try:
        day_id = _session_day(store, day)
        book = SessionBook(store.conn)
        ended = book.end(day_id, _session_type(kind), _parse_time(at), reason=_reason(reason) if reason else None)
        book.recalculate_day(day_id)
    finally:
        store.close()
    err.print(f"Ended {kind} session {ended.number}" if ended else f"No {kind} session was running")


@session_app.command("correct")
def session_correct(
    kind: SessionTypeArg,
    number: Annotated[int, typer.Argument(help="Session number")],
    seconds: Annotated[
        float, typer.Option("--seconds", "-s", help="The session's correction in seconds, e.g. -s -4 (replaces any earlier one)")
    ],
    day: DayOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Set a session's manual correction (it replaces the previous one); the day's times are recalculated.

    Example: the published video lost 4 s at the restart of stream session 2:
    `restrike slave session correct stream 2 --seconds -4`.
    """
    from slave_agent.db.sessions import SessionBook

    store = _open_store(config, data_dir)
    try:
        restamped = SessionBook(store.conn).correct_offset(_session_day(store, day), _session_type(kind), number, seconds)
    except LookupError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        store.close()
    err.print(f"Restamped {restamped} event(s)")


@session_app.command("list")
def session_list(day: DayOpt = None, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Sessions of a day with their offsets and interruption reasons."""
    from shared.records import ms_to_iso
    from shared.stream_time import SessionType
    from slave_agent.db.sessions import SessionBook

    store = _open_store(config, data_dir)
    try:
        day_id = _session_day(store, day)
        book = SessionBook(store.conn)
        table = Table("type", "#", "start (UTC)", "end (UTC)", "starts at", "correction", "ended because")
        for kind in SessionType:
            for s in book.sessions(day_id, kind):
                table.add_row(
                    kind.value, str(s.number), ms_to_iso(s.start_ms)[:19], ms_to_iso(s.end_ms)[:19] if s.end_ms else "running",
                    _signed_hms(s.cumulative_offset_seconds), f"{s.time_offset_seconds:+.0f} s",
                    s.interruption_reason.value if s.interruption_reason else "",
                )
    finally:
        store.close()
    Console().print(table)
