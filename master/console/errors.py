"""The console's start-up failure, importable without loading NiceGUI (the CLI catches it)."""

from __future__ import annotations

__all__ = ["ConsoleUnavailable"]


class ConsoleUnavailable(RuntimeError):
    """The console cannot start (its port is taken, the address is not this machine's)."""
