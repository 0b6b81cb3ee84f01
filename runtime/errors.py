"""Failures an operator can fix: shown as one or two lines, never as a traceback (unless ``--debug``)."""

from __future__ import annotations

__all__ = ["OperatorError"]


class OperatorError(Exception):
    """A failure whose message says what is wrong and what to do; the command exits with ``exit_code``.

    The command line prints ``heading: message``. Exit status 2 means retrying cannot help (a wrong
    setting), so the systemd units do not restart on it; 1 means it may pass (a server still starting).
    """

    heading = "Error"
    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
