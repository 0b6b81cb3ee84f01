"""Log levels an operator can live with: the first few of a repeated problem loud, the rest quiet."""

from __future__ import annotations

import logging

__all__ = ["LOUD_REPEATS", "level_for_repeat"]

#: How many times a repeated problem is logged as a WARNING before it drops to DEBUG.
LOUD_REPEATS = 3


def level_for_repeat(count: int) -> int:
    """WARNING for the first ``LOUD_REPEATS`` occurrences (counting from 1), DEBUG after."""
    return logging.WARNING if count <= LOUD_REPEATS else logging.DEBUG
