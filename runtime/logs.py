"""Logs an operator can live with: one format for both daemons; a repeated problem loud at first, then quiet."""

from __future__ import annotations

import logging
import sys

__all__ = ["LOUD_REPEATS", "level_for_repeat", "setup_logging"]

#: How many times a repeated problem is logged as a WARNING before it drops to DEBUG.
LOUD_REPEATS = 3


def level_for_repeat(count: int) -> int:
    """WARNING for the first ``LOUD_REPEATS`` occurrences (counting from 1), DEBUG after."""
    return logging.WARNING if count <= LOUD_REPEATS else logging.DEBUG


def setup_logging(verbose: bool = False) -> None:
    """The daemons' log format on stderr: time, level, module; DEBUG with ``verbose``.

    obsws-python's own loggers (the password at INFO, a traceback per failed connection) are
    silenced where it is used, in ``slave_agent/obs/_connection.py``, whatever ``verbose`` says.
    Alembic's INFO lines (context, DDL mode, each migration) repeat at every start and say
    nothing an operator acts on; the master logs one line of its own instead.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)
