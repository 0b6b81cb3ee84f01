"""Every command's --help reads well in an 80-column terminal: flags show no value type, no line wraps."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click
import typer
from typer.testing import CliRunner

from restrike.cli import app


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if hasattr(command, "list_commands"):  # a group (typer vendors its own click: no isinstance)
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and name != "bench":  # pass-through to the benchmarks' own parser
                yield from _commands(sub, (*path, name))


def test_help_fits_80_columns_and_flags_take_no_value() -> None:
    root = typer.main.get_command(app)
    paths = list(_commands(root))
    assert ("slave", "run") in paths and ("master", "status") in paths and ("demo",) in paths
    for path in paths:
        result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, prog_name="restrike")
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, path
        assert max(len(line) for line in result.output.splitlines()) <= 80, (path, result.output)
