"""``restrike slave ...``: run a court's agent and look into its database."""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from runtime.logs import setup_logging
from shared.pss import Category
from shared.pss.kinds import EventKind
from shared.records import EXPORT_COLUMNS
from slave_agent.config import DEFAULT_DATA_DIR, load_config
from slave_agent.db.store import EventFilter, EventStore, NoDatabase

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


def _open_store(config: Path | None, data_dir: Path | None) -> EventStore:
    """The database a running (or earlier) agent made; never a new one, never a new node id."""
    cfg = load_config(config, {"data_dir": data_dir})
    try:
        return EventStore(cfg.data_dir, create=False)
    except NoDatabase as exc:
        raise NoDatabase(
            f"{exc}.\nOnly `restrike slave run` creates one. Give the agent's folder with --data-dir or its "
            f"settings with -c (default folder: {DEFAULT_DATA_DIR}, relative to where you run the command)."
        ) from None



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
    no_obs: Annotated[bool, typer.Option("--no-obs", help="Do not connect to OBS (events are stored as usual)")] = False,
    operator_port: Annotated[int | None, typer.Option(help="Port of the operator page [default: 8090]")] = None,
    resync_port: Annotated[
        int | None, typer.Option(help="Scoring software's listen port for pull requests [default: do not ask]")
    ] = None,
    sender_host: Annotated[
        str | None, typer.Option(help="Scoring computer's IPv4 address, asked at start [default: first sender heard]")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging")] = False,
) -> None:
    """Run the court agent until Ctrl-C or SIGTERM: listen for PSS, store every event, publish it."""
    from slave_agent.app import run_agent

    setup_logging(verbose)
    overrides: dict[str, Any] = {
        "data_dir": data_dir,
        "udp": {"port": udp_port, "host": udp_host},
        "node": {"court": court, "node_id": node_id},
        "publisher": {"pub_port": pub_port, "router_port": router_port, "mdns": False if no_mdns else None},
        "resync": {"sender_port": resync_port, "sender_host": sender_host},
    }
    if no_obs:
        overrides["obs"] = {"rec": {"enabled": False}, "str": {"enabled": False}}
    overrides["operator"] = {"port": operator_port}
    cfg = load_config(config, overrides)
    try:
        asyncio.run(run_agent(cfg))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@app.command("validate-config")
def validate_config(config: Annotated[Path, typer.Argument(help="TOML config file to check")]) -> None:
    """Check a config file and print the settings it results in."""
    cfg = load_config(config, {})
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


def _choices(values: list[str] | None, allowed: type[StrEnum], option: str) -> tuple[Any, ...]:
    try:
        return tuple(allowed(v) for v in values or ())
    except ValueError:
        raise typer.BadParameter(f"choose from {' '.join(a.value for a in allowed)}", param_hint=option) from None


@app.command()
def events(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    output_format: Annotated[str, typer.Option("--format", "-f", help="table, json (one object per line) or csv")] = "table",
    session: Annotated[int | None, typer.Option(help="Only events inside this OBS session (id)")] = None,
    tournament: Annotated[str | None, typer.Option(help="Tournament name or UUID")] = None,
    day: Annotated[str | None, typer.Option(help="Day: UUID, TOURNAMENT:N, or N of the active tournament")] = None,
    match: Annotated[str | None, typer.Option(help="Match number, e.g. 101 or 245.A")] = None,
    category: Annotated[
        list[str] | None,
        typer.Option(help=f"Category (repeatable): {Category.legend()}"),
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(help=f"Finer than a category, from the code (repeatable): {', '.join(k.value for k in EventKind)}"),
    ] = None,
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
            categories=_choices(category, Category, "--category"),
            kinds=_choices(kind, EventKind, "--kind"),
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
            sys.stdout.write(json.dumps(record.export_fields(), ensure_ascii=False) + "\n")
    elif output_format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for record in rows:
            writer.writerow(record.export_fields())
    else:
        table = Table("seq", "time (UTC)", "code", "cat", "match", "stream", "raw", "problem")
        for record in rows:
            table.add_row(
                str(record.seq), record.timestamp[11:23], record.code, record.event_category,
                record.match_number or "", record.str_timestamp or "", record.raw,
                ("" if record.valid else f"[red]{record.error}[/red] ")
                + ("[dim](resync)[/dim]" if record.resync else ""),  # an answer to a pull request
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


ivr_app = typer.Typer(help="Instant replay: what each OBS / replay trigger did, step by step.", no_args_is_help=True)
app.add_typer(ivr_app, name="ivr")


@ivr_app.command("list")
def ivr_list(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    match: Annotated[str | None, typer.Option(help="Only this match number")] = None,
    limit: Annotated[int, typer.Option(min=1, help="The latest N triggers")] = 50,
    output_format: Annotated[str, typer.Option("--format", "-f", help="table or json (one object per line)")] = "table",
) -> None:
    """Triggers (match ready, replay, review over) with their outcome, clip and each step's time."""
    from rich.markup import escape

    from shared.records import ms_to_iso
    from slave_agent.db.ivr import recent_logs

    if output_format not in ("table", "json"):
        raise typer.BadParameter("choose table or json", param_hint="--format")
    store = _open_store(config, data_dir)
    try:
        logs = recent_logs(store.conn, limit, match)
    finally:
        store.close()
    if output_format == "json":
        for log in logs:
            t = log.trigger
            sys.stdout.write(json.dumps({
                "uuid": log.uuid, "kind": t.kind.value, "source": t.source, "outcome": log.outcome,
                "reason": log.reason, "requested": ms_to_iso(t.at_ms), "took_ms": log.finished_ms - t.at_ms,
                "match_number": t.match_number, "blue": log.blue, "red": log.red, "challenge_by": t.challenge_by,
                "challenge_result": t.challenge_result, "recording_path": log.recording_path,
                "clip_path": log.clip_path, "clip_bytes": log.clip_bytes, "linked_events": log.linked_events,
                "steps": [{"step": s.name, "outcome": s.outcome.value, "at_ms": s.at_ms, "took_ms": s.took_ms,
                           "detail": s.detail} for s in log.steps],
            }, ensure_ascii=False) + "\n")
        return
    table = Table("time (UTC)", "trigger", "match", "outcome", "took", "steps (ms after the event)", "clip / problem")
    colours = {"done": "green", "partial": "yellow", "failed": "red", "skipped": "yellow"}
    for log in logs:
        t = log.trigger
        steps = " ".join(f"{s.name}{'' if s.outcome.value == 'done' else '!' + s.outcome.value}@{s.at_ms}"
                         for s in log.steps)
        table.add_row(
            ms_to_iso(t.at_ms)[11:23], f"{t.kind.value} ({t.source})", t.match_number or "",
            f"[{colours[log.outcome]}]{log.outcome}[/]", f"{log.finished_ms - t.at_ms} ms", steps,
            escape(log.reason or (Path(log.clip_path).name if log.clip_path else "")),  # OBS's words, not markup
        )
    Console().print(table)
    err.print(f"{len(logs)} trigger(s)")


@app.command()
def replay(
    config: ConfigOpt = None,
    url: Annotated[str | None, typer.Option(help="The running agent's operator page [default: from the config, "
                                                  "http://127.0.0.1:8090]")] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for the replay to be on air")] = 60.0,
) -> None:
    """Trigger an instant replay on the running agent (as its REPLAY button does), for a hardware key or a script.

    Exit code 0 when every step worked, 1 when some did not (the reason is printed), 2 when no agent answered.
    """
    import urllib.error
    import urllib.request

    from rich.markup import escape

    if url is None:
        page = load_config(config, {}).operator
        url = f"http://{'127.0.0.1' if page.host in ('0.0.0.0', '') else page.host}:{page.port}"
    request = urllib.request.Request(url.rstrip("/") + "/api/replay", method="POST", data=b"")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            result = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # a server answered, but it has no replay to give
        err.print(f"[red]{escape(url)} answered HTTP {exc.code} {escape(str(exc.reason))}[/red] to a replay request "
                  "(is it a court agent's operator page? `restrike slave run` serves it)", markup=True, highlight=False)
        raise typer.Exit(2) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        err.print(f"[red]No court agent answered at {escape(url)}:[/red] {escape(str(getattr(exc, 'reason', exc)))} "
                  "(is `restrike slave run` running with its operator page enabled?)")
        raise typer.Exit(2) from None
    steps = ", ".join(f"{s['step']} {s['outcome']} @{s['at_ms']} ms" for s in result.get("steps", []))
    line = f"Replay {result['outcome']}" + (f": {result['reason']}" if result.get("reason") else "")
    if result.get("clip"):
        line += f" (clip {result['clip']})"
    typer.echo(line)
    if steps:
        err.print(steps)
    if result["outcome"] != "done":
        raise typer.Exit(1)
