"""Binding a port this process must own alone, and saying plainly why it could not."""

from __future__ import annotations

import errno
import sys
from typing import Literal

from runtime.errors import OperatorError

__all__ = ["PortUnavailable", "bind_failure", "who_holds"]

Protocol = Literal["UDP", "TCP"]

#: Windows reports its own numbers (WSAEADDRINUSE, WSAEADDRNOTAVAIL, WSAEACCES).
_IN_USE = {errno.EADDRINUSE, 10048}
_NOT_HERE = {errno.EADDRNOTAVAIL, 10049}
_DENIED = {errno.EACCES, 10013}


class PortUnavailable(OperatorError):
    """A port could not be bound; the message names it, the reason and what to do."""

    heading = "Cannot start"

    def __init__(self, message: str, port: int) -> None:
        super().__init__(message)
        self.port = port


def who_holds(protocol: Protocol, port: int, platform: str = sys.platform) -> str:
    """The command that shows which program holds ``port`` on this operating system."""
    if platform == "win32":
        return f"netstat -ano -p {protocol.lower()} | findstr :{port}"
    if platform == "darwin":
        return f"lsof -nP -i{protocol}:{port}"
    return f"ss -{'u' if protocol == 'UDP' else 't'}lpn 'sport = :{port}'"


def bind_failure(code: int | None, reason: str, protocol: Protocol, host: str, port: int, role: str) -> PortUnavailable:
    """An operator's reading of a failed bind (``code``: its errno): taken (and by whom), not ours, or privileged."""
    where = f"{protocol} port {port} ({role})"
    if code in _IN_USE:
        message = f"{where} is already in use by another program, perhaps a second agent; see who holds it: {who_holds(protocol, port)}"
    elif code in _NOT_HERE:
        message = f"cannot listen on {host}:{port} for {role}: {host} is not an address of this machine"
    elif code in _DENIED:
        message = f"{where}: permission denied (ports below 1024 need administrator rights; use a higher port)"
    else:
        message = f"cannot listen on {protocol} {host}:{port} for {role}: {reason}"
    return PortUnavailable(message, port)
