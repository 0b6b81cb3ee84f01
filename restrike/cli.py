"""``restrike``: one command for the court agent, the master, the PSS tools and the demo."""

from __future__ import annotations

import typer

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


def _version(value: bool) -> None:
    if value:
        typer.echo(f"restrike {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit"),
) -> None:
    """reStrike VTA: broadcast and instant replay for taekwondo tournaments."""


def main() -> None:
    """Console-script entry point."""
    app()
