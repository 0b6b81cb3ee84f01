"""``restrike master send / announce / audit``: the director's commands from the terminal.

The command reaches the courts itself, over its own DEALER to each court (CURVE with the
master's key and each court's approved key), so it works whether or not ``restrike master
run`` is running; the courts run each command id once whoever sends it. Every command and
each court's outcome go to the central audit log.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
import zmq.asyncio
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from master.cli_options import ConfigOpt, DataDirOpt, DbOpt
from master.config import MasterConfig
from runtime.errors import OperatorError
from shared.commands import Action, BadArguments, LogLines, Priority, parse_args

__all__ = ["register"]

Reading = Callable[[Path | None, str | None, Path | None], Any]

err = Console(stderr=True)

CourtOpt = Annotated[
    list[str] | None, typer.Option("--court", help="Court name or node id (repeatable); or --all")
]
AllOpt = Annotated[bool, typer.Option("--all", help="Every approved court")]
TimeoutOpt = Annotated[
    float | None, typer.Option(min=0.1, max=600, help="Seconds before a court's answer counts as expired [default: per action]")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="The whole result as one JSON object")]


def register(app: typer.Typer, load_config: Callable[..., MasterConfig], reading: Reading) -> None:
    """Add the commands to ``restrike master``; ``load_config`` and ``reading`` are its way to the
    configuration and the central database (one operator line for what goes wrong)."""

    @app.command()
    def send(
        action: Annotated[str, typer.Argument(help="What to do (the list above)", metavar="ACTION")],
        args: Annotated[
            list[str] | None,
            typer.Argument(help="KEY=VALUE arguments, e.g. scene=ivr, lines=50", metavar="[KEY=VALUE]..."),
        ] = None,
        court: CourtOpt = None,
        all_courts: AllOpt = False,
        timeout: TimeoutOpt = None,
        as_json: JsonOpt = False,
        config: ConfigOpt = None,
        db: DbOpt = None,
        data_dir: DataDirOpt = None,
    ) -> None:
        """Run an action on one court, several or all, in parallel; prints each court's result.

        Actions: mute / unmute [inputs=...], start_recording, stop_recording, set_scene scene=NAME,
        start_replay_buffer, stop_replay_buffer, replay, restart_obs, message text=..., activate_day
        tournament_uuid=... tournament_name=... day_number=N date=YYYY-MM-DD, finish_day, health, logs [lines=N].
        Exit status 0 when every court answered done, 1 otherwise.
        """
        values = _key_values(args or [])
        chosen = _action(action, "ACTION")
        try:
            parse_args(chosen, values)
        except BadArguments as exc:
            raise typer.BadParameter(str(exc), param_hint="ARGS") from None
        cfg = load_config(config, database_url=db, data_dir=data_dir)
        result = _run(cfg, reading, config, db, data_dir, court, all_courts,
                      lambda control, names: control.async_send(chosen, values, courts=names, timeout=timeout))
        _show(result, as_json)

    @app.command()
    def announce(
        text: Annotated[str, typer.Argument(help="The message shown on the courts' local pages")],
        court: CourtOpt = None,
        all_courts: AllOpt = False,
        priority: Annotated[Priority, typer.Option(help="low, normal, high or urgent", case_sensitive=False)] = Priority.NORMAL,
        kind: Annotated[str, typer.Option(help="A word for the kind of message (info, schedule, break ...)")] = "info",
        timeout: TimeoutOpt = None,
        as_json: JsonOpt = False,
        config: ConfigOpt = None,
        db: DbOpt = None,
        data_dir: DataDirOpt = None,
    ) -> None:
        """Show a message on the courts' local pages; recorded as an announcement with its delivery."""
        try:
            parse_args(Action.MESSAGE, {"text": text, "priority": priority.value, "kind": kind})
        except BadArguments as exc:
            raise typer.BadParameter(str(exc)) from None
        cfg = load_config(config, database_url=db, data_dir=data_dir)
        result = _run(cfg, reading, config, db, data_dir, court, all_courts, lambda control, names: control.async_announce(
            text, courts=names, priority=priority, kind=kind, timeout=timeout))
        _show(result, as_json)

    @app.command()
    def audit(
        court: Annotated[list[str] | None, typer.Option("--court", help="Only this court's rows (node id)")] = None,
        action: Annotated[str | None, typer.Option(help="Only this action", metavar="ACTION")] = None,
        limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many rows")] = 50,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per row")] = False,
        config: ConfigOpt = None,
        db: DbOpt = None,
        data_dir: DataDirOpt = None,
    ) -> None:
        """The director's commands, newest first: who, what, which court, when, and each outcome."""
        from master.audit import read_commands
        from master.db._engine import create_central_engine

        cfg = load_config(config, database_url=db, data_dir=data_dir)
        with reading(config, db, data_dir):  # the database exists and has the schema: one clear line otherwise
            engine = create_central_engine(cfg.url())
        try:
            rows = read_commands(engine, limit=limit, node_ids=court or (), action=_action(action, "--action").value if action else None)
        finally:
            engine.dispose()
        if as_json:
            for row in rows:
                typer.echo(json.dumps(asdict(row), default=str))
            return
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for column in ("issued (UTC)", "by", "action", "court", "outcome", "ms"):
            table.add_column(column, no_wrap=True)
        table.add_column("reason")
        for row in rows:
            table.add_row(
                row.issued_at.strftime("%m-%d %H:%M:%S"), Text(row.issued_by), row.action, Text(row.court_name or row.node_id),
                Text(row.outcome or "no answer", style=_STYLE.get(row.outcome or "", "yellow")),
                f"{row.round_trip_ms:.0f}" if row.round_trip_ms is not None else "", Text(row.reason or ""),
            )
        Console().print(table)
        if not rows:
            err.print("No command yet.")


_STYLE = {"done": "green", "failed": "red", "expired": "red"}


def _action(text: str, hint: str) -> Action:
    try:
        return Action(text.strip().lower())
    except ValueError:
        raise typer.BadParameter(f"{text!r}: choose one of {', '.join(a.value for a in Action)}", param_hint=hint) from None


def _key_values(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; a value that reads as JSON (a number, true, a list) is taken as such."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="ARGS")
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
    return values


def _run(cfg: MasterConfig, reading: Reading, config: Path | None, db: str | None, data_dir: Path | None,
         court: list[str] | None, all_courts: bool, call: Any) -> Any:
    from master.audit import DbAudit
    from master.commands import CourtLine
    from master.control import Controller, UnknownCourt
    from master.gate import direct_keys

    if bool(court) == all_courts:
        raise typer.BadParameter("name the courts with --court NAME (repeatable), or give --all")
    with reading(config, db, data_dir) as repository:
        nodes = [n for n in repository.nodes() if n.address and n.router_port]
    reachable = [n for n in nodes if not cfg.curve or (n.approved and n.public_key)]
    skipped = [n for n in nodes if n not in reachable]

    async def main() -> Any:
        from master.db._engine import create_central_engine

        ctx = zmq.asyncio.Context()
        engine = create_central_engine(cfg.url())
        lines = []
        for n in reachable:
            client_keys, server_key = direct_keys(cfg.curve, cfg.keys_folder, n)
            lines.append(CourtLine(ctx, n.node_id, n.court_name, n.address or "", n.router_port or 0,
                                   client_keys=client_keys, server_key=server_key))
        control = Controller(lambda: lines, audit=DbAudit(engine))
        try:
            try:
                chosen = control.select(None if all_courts else court)
            except UnknownCourt as exc:
                wanted = {c.casefold() for c in court or ()}
                pending = [n for n in skipped if wanted & {n.node_id.casefold(), (n.court_name or "").casefold()}]
                if pending:
                    raise OperatorError(f"court {pending[0].node_id} is {pending[0].status}, not approved: "
                                        f"`restrike master approve {pending[0].node_id}` first", 2) from None
                raise OperatorError(str(exc), 2) from None
            if not chosen:
                raise OperatorError("no approved court to command (see `restrike master status`)", 2)
            for line in lines:
                if line in chosen:
                    line.start()
            result = await call(control, [line.node_id for line in chosen])
            await control.async_flush()
            return result
        finally:
            for line in lines:
                await line.async_stop()
            ctx.destroy(linger=0)
            engine.dispose()

    if all_courts and skipped:
        err.print(f"Not approved, not commanded: {', '.join(n.node_id for n in skipped)}")
    return asyncio.run(main())


def _show(result: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(result.model_dump_json())
    else:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
                      title=f"{result.action.value} · command {result.command_id[:8]}", title_justify="left")
        for column in ("court", "outcome", "ms"):
            table.add_column(column, no_wrap=True)
        table.add_column("detail")
        for court in result.results:
            table.add_row(Text(court.court), Text(court.outcome + (" (again)" if court.replayed else ""),
                                                  style=_STYLE[court.outcome]),
                          f"{court.round_trip_ms:.0f}", Text(court.detail() + (", below" if isinstance(court.data, LogLines) else "")))
        Console().print(table)
        for court in result.results:
            if isinstance(court.data, LogLines):
                Console().print(Text(f"--- {court.court}: last {len(court.data.lines)} log lines", style="bold"))
                for line in court.data.lines:
                    typer.echo(line)
    if any(court.outcome != "done" for court in result.results):
        raise typer.Exit(1)
