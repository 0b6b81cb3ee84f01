"""``restrike master ...``: run the venue master, migrate its database, see every court's state."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from master import clip_cli, control_cli
from master.cli_options import ConfigOpt, DataDirOpt, DbOpt
from master.config import DEFAULT_MASTER_DIR, MasterConfig, load_master_config
from runtime.errors import OperatorError
from runtime.logs import setup_logging
from shared.match_state import MatchStatus
from shared.pss import Category
from shared.pss.kinds import EventKind
from shared.records import EXPORT_COLUMNS

if TYPE_CHECKING:
    from pydantic import BaseModel

    from master.db.repository import CentralRepository
    from shared.match_snapshot import MatchSnapshot

#: A node row the master has not rewritten for this long: the master is not running (or not writing).
STALE_SECONDS = 15

__all__ = ["app"]

Q = TypeVar("Q", bound="BaseModel")

app = typer.Typer(help="The venue master: every court's events, exactly once, in one database.", no_args_is_help=True)
db_app = typer.Typer(help="The central database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(clip_cli.app, name="clip")

err = Console(stderr=True)



def _config(config: Path | None, **overrides: Any) -> MasterConfig:
    return load_master_config(config, overrides)


@contextmanager
def _database_errors(url: str) -> Iterator[None]:
    """A central database that cannot be reached or opened becomes one operator line (password masked)."""
    from sqlalchemy.exc import SQLAlchemyError

    from master.db.errors import unusable_database

    try:
        yield
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        problem = unusable_database(exc, url)
        if problem is None:
            raise
        raise problem from exc


def _existing_database(cfg: MasterConfig) -> str:
    """The URL of a database that exists already: looking at it must never create one."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from master.db.errors import unusable_database
    from master.db.store import SQLITE_FILE_NAME

    if cfg.database_url is None:
        if not (cfg.data_dir / SQLITE_FILE_NAME).is_file():
            raise OperatorError(
                f"no master database in {cfg.data_dir} (the default folder is {DEFAULT_MASTER_DIR}): "
                "has `restrike master run` run here? Or pass --db / -c with the master's database", 2
            )
        return cfg.url()
    try:
        parsed = make_url(cfg.database_url)
    except (ArgumentError, ValueError) as exc:
        raise unusable_database(exc, cfg.database_url) or exc from exc
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).is_file():
        raise OperatorError(f"no master database at {parsed.database} (from --db); has `restrike master run` used it?", 2)
    return cfg.database_url


@app.command()
def run(
    config: ConfigOpt = None,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    endpoint: Annotated[
        list[str] | None, typer.Option(help="Court to connect to, HOST:PUB_PORT:ROUTER_PORT (repeatable)")
    ] = None,
    no_mdns: Annotated[bool, typer.Option("--no-mdns", help="Only use the endpoints given")] = False,
    http_port: Annotated[
        int | None, typer.Option("--http-port", min=0, max=65535, help="Web console and overlay port [default: 8080; 0: none]")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the master until Ctrl-C or SIGTERM: find courts, store all their events, serve the web console."""
    from master.app import run_master
    from master.console.errors import ConsoleUnavailable

    setup_logging(verbose)
    cfg = _config(
        config, database_url=db, data_dir=data_dir, endpoints=endpoint or None, mdns=False if no_mdns else None,
        http_port=http_port,
    )
    try:
        with _database_errors(cfg.url()):  # a URL: given a folder, any ValueError read as "not a URL"
            asyncio.run(run_master(cfg))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except ConsoleUnavailable as exc:
        err.print(f"[red]Cannot start:[/red] {exc}")
        raise typer.Exit(2) from None


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None, db: DbOpt = None, data_dir: DataDirOpt = None) -> None:
    """Create or migrate the central database schema (safe to run any time)."""
    from master.db.migrate import current_revision, upgrade

    cfg = _config(config, database_url=db, data_dir=data_dir)
    url = cfg.url()
    with _database_errors(url):
        before = current_revision(url)
        upgrade(url)
        after = current_revision(url)
    err.print(f"Central database at revision {after}" + ("" if before == after else f" (was {before})"))


@contextmanager
def _reading(config: Path | None, db: str | None, data_dir: Path | None) -> Iterator[CentralRepository]:
    """The central database an earlier `restrike master run` made (never a new one), for reading;
    what goes wrong on the way is one operator line."""
    from master.db.errors import CentralStoreError, masked_url
    from master.db.migrate import current_revision
    from master.db.repository import CentralRepository

    url = _existing_database(_config(config, database_url=db, data_dir=data_dir))
    with _database_errors(url):
        if current_revision(url) is None:
            raise OperatorError(
                f"{masked_url(url)} has no reStrike VTA schema (wrong --db?). "
                "Start `restrike master run` or run `restrike master db upgrade` first.", 2
            )
    repository = CentralRepository.open(url)
    try:
        yield repository
    except CentralStoreError as exc:
        raise OperatorError(f"{masked_url(url)}: {exc}", 1) from exc
    except LookupError as exc:  # a court, tournament or day the master does not know
        raise OperatorError(str(exc), 2) from None
    finally:
        repository.close()


@app.command()
def status(
    config: ConfigOpt = None,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per court")] = False,
) -> None:
    """Courts known to the master: online or offline, last seq published vs stored, lag."""
    from master.services.courts import stored_courts

    with _reading(config, db, data_dir) as repository:
        courts = stored_courts(repository)
    if as_json:
        for court in courts:
            typer.echo(court.model_dump_json())
        return
    now = dt.datetime.now(dt.UTC)
    table = Table(
        "court", caption="published: the court's last event (from its heartbeat) · stored: the master has every "
                         "event up to it · lag: the backlog the master still has to fetch · times UTC",
        box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
    )
    table.columns[0].no_wrap = True
    for column in ("node", "status", "last seen"):
        table.add_column(column, no_wrap=True)
    for column in ("published", "stored", "lag"):
        table.add_column(column, justify="right")
    table.add_column("match")
    colours = {"online": "green", "pending": "yellow"}
    for court in courts:
        colour = colours.get(court.status, "red")
        table.add_row(
            Text(court.court or "?"), Text(court.node_id), Text(court.status, style=colour), _when(court.last_seen, now),
            str(court.published_seq), str(court.stored_seq), str(court.lag), _match_text(court.match),
        )
    Console().print(table)
    for court in courts:
        if court.refused_key:
            err.print(f"[red]REFUSED:[/red] a court at {court.offered_from} claimed node {court.node_id} with key "
                      f"{court.refused_key} (approved: {court.key}). If it was replaced on purpose: "
                      f"restrike master approve {court.node_id} --replace")
        elif court.status == "pending":
            how = "" if court.offered_key else " --key KEY"
            err.print(f"Pending: compare {court.node_id}'s key with `restrike keys show court` on that laptop, then "
                      f"restrike master approve {court.node_id}{how}")
    if not courts:
        err.print("No court has been seen yet. Is `restrike master run` running, and can it reach the courts?")
    silent = [c.as_of for c in courts if c.status == "online" and c.as_of and (now - c.as_of).total_seconds() > STALE_SECONDS]
    if silent:
        err.print(f"[yellow]The master last wrote this state {(now - max(silent)).total_seconds():.0f} s ago[/yellow]: "
                  "is `restrike master run` running and its database writable? 'online' is what it saw then.")


def _match_text(match: MatchSnapshot | None) -> Text:
    """A court's match in one cell: number, round, score, status."""
    if match is None or match.status is MatchStatus.IDLE:
        return Text("-")
    return Text(f"{match.number or '?'} R{match.round} {match.score.blue}:{match.score.red} {match.status.value}")


def _when(moment: dt.datetime | None, now: dt.datetime) -> str:
    """The time alone when it is today (UTC), with the date otherwise."""
    if moment is None:
        return ""
    return moment.strftime("%H:%M:%S" if moment.date() == now.date() else "%Y-%m-%d %H:%M")


FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table, json (one object per line) or csv")]
TournamentOpt = Annotated[str | None, typer.Option(help="Tournament name or UUID")]
DayOpt = Annotated[str | None, typer.Option(help="Day: UUID, TOURNAMENT:N, or N (of --tournament or the only one)")]
CourtOpt = Annotated[str | None, typer.Option(help="Court name or node id")]
MatchOpt = Annotated[str | None, typer.Option(help="Match number, e.g. 101 or 245.A")]
OldestOpt = Annotated[bool, typer.Option("--oldest-first", help="Oldest first [default: newest first]")]
AfterOpt = Annotated[str | None, typer.Option(help="The next page: the cursor printed under the previous one")]


def _query(model: type[Q], values: dict[str, Any], options: dict[str, str]) -> Q:
    """The service's query from the command line; a value it refuses names its option."""
    from pydantic import ValidationError

    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = str(problem["loc"][0])
        raise typer.BadParameter(f"{problem['input']!r}: {problem['msg']}", param_hint=options.get(field, f"--{field}")) from None


def _check_format(output_format: str) -> None:
    if output_format not in ("table", "json", "csv"):
        raise typer.BadParameter("choose table, json or csv", param_hint="--format")


@app.command()
def events(
    config: ConfigOpt = None,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    output_format: FormatOpt = "table",
    tournament: TournamentOpt = None,
    day: DayOpt = None,
    court: CourtOpt = None,
    match: MatchOpt = None,
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
    search: Annotated[str | None, typer.Option(help="Only lines containing this text (any case)")] = None,
    session: Annotated[
        str | None, typer.Option(help="Only events inside this OBS session, TYPE:N (e.g. stream:2; needs --court, --day)")
    ] = None,
    oldest_first: OldestOpt = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Events per page")] = 100,
    after: AfterOpt = None,
    count: Annotated[bool, typer.Option("--count", help="Only print how many events match")] = False,
) -> None:
    """Every court's events at the master, newest first, a page at a time."""
    from master.services.events import EventQuery, EventService, InvalidCursor

    _check_format(output_format)
    query = _query(EventQuery, {
        "tournament": tournament, "day": day, "court": court, "match_number": match,
        "categories": category or (), "kinds": kind or (), "since": since, "until": until, "text": search,
        "session": session, "newest_first": not oldest_first,
    }, {"categories": "--category", "kinds": "--kind", "text": "--search", "match_number": "--match"})
    with _reading(config, db, data_dir) as repository:
        service = EventService(repository)
        if count:
            typer.echo(service.count(query))
            return
        try:
            page = service.page(query, limit=limit, cursor=after)
        except InvalidCursor as exc:
            raise typer.BadParameter(str(exc), param_hint="--after") from None
    if output_format == "json":
        for event in page.events:
            line = {"court": event.court, **event.record.export_fields(), "stored_at": event.stored_at.isoformat()}
            sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
    elif output_format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=["court", "node_id", *EXPORT_COLUMNS], extrasaction="ignore")
        writer.writeheader()
        for event in page.events:
            writer.writerow({"court": event.court, **event.record.export_fields()})
    else:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
                      caption="raw in red: not understood, with the reason · (resync): the sender's answer to a pull request")
        for column in ("time (UTC)", "court", "seq", "code", "cat", "match"):
            table.add_column(column, no_wrap=True)
        table.add_column("raw")
        for event in page.events:
            record = event.record
            raw = Text(record.raw) if record.valid else Text(f"{record.raw}  ({record.error})", style="red")
            if record.resync:  # an answer to the court's pull request, not live traffic
                raw.append(" (resync)", style="dim")
            table.add_row(
                record.timestamp[5:19].replace("T", " "), Text(event.court or record.node_id), str(record.seq),
                Text(record.code), record.event_category, Text(record.match_number or ""), raw,
            )
        Console().print(table)
        err.print(f"{len(page.events)} event(s)")
    if page.next_cursor:
        err.print(f"More: add --after {page.next_cursor}")


@app.command()
def matches(
    config: ConfigOpt = None,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    output_format: FormatOpt = "table",
    tournament: TournamentOpt = None,
    day: DayOpt = None,
    court: CourtOpt = None,
    match: MatchOpt = None,
    status: Annotated[
        list[str] | None,
        typer.Option(help=f"Status (repeatable): {', '.join(s.value for s in MatchStatus)}"),
    ] = None,
    oldest_first: OldestOpt = False,
    limit: Annotated[int, typer.Option(min=1, max=5_000, help="Matches per page")] = 100,
    after: AfterOpt = None,
) -> None:
    """Every court's matches at the master (athletes, result, times), latest loaded first."""
    from master.services.matches import InvalidCursor, MatchQuery, MatchService

    _check_format(output_format)
    query = _query(MatchQuery, {
        "tournament": tournament, "day": day, "court": court, "match_number": match, "statuses": status or (),
        "newest_first": not oldest_first,
    }, {"statuses": "--status", "match_number": "--match"})
    with _reading(config, db, data_dir) as repository:
        try:
            page = MatchService(repository).page(query, limit=limit, cursor=after)
        except InvalidCursor as exc:
            raise typer.BadParameter(str(exc), param_hint="--after") from None
    if output_format == "json":
        for found in page.matches:
            sys.stdout.write(found.model_dump_json() + "\n")
    elif output_format == "csv":
        columns = ["court", "node_id", "number", "phase", "weight_class", "division", "blue_name", "blue_noc",
                   "red_name", "red_noc", "status", "winner", "decision", "blue_rounds", "red_rounds", "loaded_at",
                   "ready_at", "finished_at", "uuid"]
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for found in page.matches:
            row = found.model_dump(mode="json")
            rounds = row.pop("rounds") or {}
            blue, red = row.pop("blue"), row.pop("red")
            writer.writerow({**row, "blue_name": blue["name"], "blue_noc": blue["noc"], "red_name": red["name"],
                             "red_noc": red["noc"], "blue_rounds": rounds.get("blue"), "red_rounds": rounds.get("red")})
    else:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for column in ("loaded (UTC)", "court", "match"):
            table.add_column(column, no_wrap=True)
        for column in ("blue", "red", "status", "result"):
            table.add_column(column)
        for found in page.matches:
            rounds = f" {found.rounds.blue}-{found.rounds.red}" if found.rounds else ""
            result = f"{found.winner or ''}{rounds} {found.decision or ''}".strip()
            table.add_row(
                found.loaded_at.strftime("%m-%d %H:%M"), Text(found.court or found.node_id), Text(found.number or "?"),
                Text(f"{found.blue.name or ''} {found.blue.noc or ''}".strip()),
                Text(f"{found.red.name or ''} {found.red.noc or ''}".strip()), found.status, Text(result),
            )
        Console().print(table)
        err.print(f"{len(page.matches)} match(es)")
    if page.next_cursor:
        err.print(f"More: add --after {page.next_cursor}")


@app.command()
def chapters(
    day: Annotated[str, typer.Option(help="Day: UUID, TOURNAMENT:N, or N (of --tournament or the only one)")],
    court: Annotated[str, typer.Option(help="Court name or node id")],
    tournament: TournamentOpt = None,
    out: Annotated[Path | None, typer.Option(help="Write the list here [default: print it]")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """A court's YouTube chapters of a day, from what the master holds (as the console's Days page offers them)."""
    from master.services._scope import resolve_scope
    from master.services.day_report import court_chapters
    from shared.chapters import render

    with _reading(config, db, data_dir) as repository:
        scope = resolve_scope(repository, repository.nodes(), tournament=tournament, day=day, court=court)
        if len(scope.node_ids) > 1:
            raise OperatorError(f"{court} was worked by {len(scope.node_ids)} laptops: give one node id "
                                f"({', '.join(scope.node_ids)})", 2)
        assert scope.day_uuid is not None
        plan = court_chapters(repository, scope.day_uuid, scope.node_ids[0], dt.datetime.now(dt.UTC))
    for note in plan.notes:
        err.print(f"note: {note}")
    if not plan.valid:
        raise OperatorError(f"No chapter list YouTube would accept: {plan.problem}", 1)
    if out is None:
        sys.stdout.write(render(plan))
    else:
        out.write_text(render(plan), encoding="utf-8")
        err.print(f"{len(plan.chapters)} chapters written to {out}")


user_app = typer.Typer(help="Who may sign in to the web console.", no_args_is_help=True)
app.add_typer(user_app, name="user")
PasswordStdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input (scripts)")
]


def _account_store(config: Path | None, db: str | None, data_dir: Path | None) -> Any:
    from master.accounts import AccountStore
    from master.db.migrate import upgrade

    cfg = _config(config, database_url=db, data_dir=data_dir)
    upgrade(cfg.url())  # the users table may be newer than the database
    return AccountStore(cfg.url())


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _user_change(change: Callable[[Any], None], config: Path | None, db: str | None, data_dir: Path | None) -> None:
    from master.accounts import AccountError

    store = _account_store(config, db, data_dir)
    try:
        change(store)
    except AccountError as exc:
        err.print(f"[red]Refused:[/red] {exc}")
        raise typer.Exit(2) from None
    finally:
        store.close()


@user_app.command("add")
def user_add(
    username: str, config: ConfigOpt = None, db: DbOpt = None, data_dir: DataDirOpt = None, password_stdin: PasswordStdinOpt = False
) -> None:
    """Create a console user (asks for the password twice)."""
    password = _password(password_stdin)
    _user_change(lambda store: store.add_user(username, password), config, db, data_dir)
    err.print(f"User {username} can sign in to the console.")


@user_app.command("passwd")
def user_passwd(
    username: str, config: ConfigOpt = None, db: DbOpt = None, data_dir: DataDirOpt = None, password_stdin: PasswordStdinOpt = False
) -> None:
    """Set a user's password; signs the user out everywhere."""
    password = _password(password_stdin)
    _user_change(lambda store: store.set_password(username, password), config, db, data_dir)
    err.print(f"Password of {username} changed; their sessions are ended.")


@user_app.command("remove")
def user_remove(username: str, config: ConfigOpt = None, db: DbOpt = None, data_dir: DataDirOpt = None) -> None:
    """Remove a user and end their sessions."""
    _user_change(lambda store: store.remove_user(username), config, db, data_dir)
    err.print(f"User {username} removed.")


@user_app.command("list")
def user_list(config: ConfigOpt = None, db: DbOpt = None, data_dir: DataDirOpt = None) -> None:
    """The console's users."""
    store = _account_store(config, db, data_dir)
    try:
        names = store.list_users()
    finally:
        store.close()
    for name in names:
        typer.echo(name)
    if not names:
        err.print("No user yet: `restrike master user add NAME`.")


@app.command()
def approve(
    node: Annotated[str, typer.Argument(help="The court's node id, as `restrike master status` lists it")],
    key: Annotated[
        str | None,
        typer.Option(help="The court's public key (or its court.key file); default: the key it offered over mDNS"),
    ] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Pin a new key for a court already approved with another")] = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Approve a court: pin its key, so the master talks to it (and only to the holder of that key)."""
    import getpass

    from runtime.curve import BadKey, check_public_key, fingerprint
    from runtime.keyfiles import load_public_key

    try:
        pinned = None if key is None else load_public_key(Path(key)) if Path(key).is_file() else check_public_key(key)
    except BadKey as exc:
        raise typer.BadParameter(str(exc), param_hint="--key") from None
    with _writing(config, db, data_dir) as store:
        approval = store.approve_court(node, pinned, by=getpass.getuser(), replace=replace)
    assert approval.public_key is not None
    err.print(f"Approved {node} with key {fingerprint(approval.public_key)}; a running master connects to it within seconds.")


@app.command()
def revoke(
    node: Annotated[str, typer.Argument(help="The court's node id")],
    config: ConfigOpt = None,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Withdraw a court's approval: a running master disconnects from it within seconds."""
    with _writing(config, db, data_dir) as store:
        store.revoke_court(node)
    err.print(f"Revoked {node}: the master no longer reads from it or sends to it.")


tournament_app = typer.Typer(help="Tournaments and their days, planned at the master (the console's Days page).",
                             no_args_is_help=True)
app.add_typer(tournament_app, name="tournament")


@tournament_app.command("add")
def tournament_add(
    name: Annotated[str, typer.Argument(help="The tournament's name, as the courts will show it")],
    start: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="Date of day 1 (YYYY-MM-DD)")],
    days: Annotated[int, typer.Option(min=1, max=60, help="Days, one a date from --start on")] = 1,
    location: Annotated[str | None, typer.Option(help="Where it takes place")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Plan a tournament and its days; activate one on every court with `restrike master send activate_day`
    or the console's Days page."""
    from pydantic import ValidationError

    from master.db.repository import CentralRepository
    from master.services.days import NewDay, NewTournament, add_day, create_tournament

    first = start.date()
    try:
        new = NewTournament(name=name, location=location, start_date=first, end_date=first + dt.timedelta(days=days - 1))
    except ValidationError as exc:
        raise typer.BadParameter(exc.errors()[0]["msg"]) from None
    with _writing(config, db, data_dir) as store:
        repository = CentralRepository(store.engine)
        t_uuid = create_tournament(store, repository, new)
        day_uuids = [add_day(store, repository, NewDay(tournament_uuid=t_uuid, day_number=n,
                                                      date=first + dt.timedelta(days=n - 1)))
                     for n in range(1, days + 1)]
    print(t_uuid)
    for number, day_uuid in enumerate(day_uuids, start=1):
        err.print(f"day {number}: {first + dt.timedelta(days=number - 1)} {day_uuid}")


@contextmanager
def _writing(config: Path | None, db: str | None, data_dir: Path | None) -> Iterator[Any]:
    """The central store, its schema created or migrated first (approving may precede the first run);
    what goes wrong is one operator line."""
    from master.db.errors import CentralStoreError, masked_url
    from master.db.migrate import upgrade
    from master.db.store import CentralStore

    url = _config(config, database_url=db, data_dir=data_dir).url()
    with _database_errors(url):
        upgrade(url)
        store = CentralStore(url)
    try:
        yield store
    except CentralStoreError as exc:
        raise OperatorError(f"{masked_url(url)}: {exc}", 1) from exc
    except (LookupError, ValueError) as exc:  # an unknown court, a key that needs --key or --replace
        raise OperatorError(str(exc), 2) from None
    finally:
        store.close()


control_cli.register(app, _config, _reading)
