"""The options every ``restrike master`` command that reads the central database takes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from master.config import DEFAULT_MASTER_DIR

__all__ = ["ConfigOpt", "DataDirOpt", "DbOpt"]

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config (see deploy/master.example.toml)")]
DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="Database URL, e.g. postgresql+psycopg://user@host/restrike [default: SQLite in the data folder]"),
]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", "-d", help=f"Master data folder [default: {DEFAULT_MASTER_DIR}]")]
