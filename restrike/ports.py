"""Free loopback ports for what the tools start on this machine (demo courts, benchmarks, tests)."""

from __future__ import annotations

import os
import random
import socket

__all__ = ["RANGE_VARIABLE", "free_port", "port_range"]

#: Below Linux's ephemeral range (32768-60999 by default). The kernel takes the source port of every
#: outgoing connection from that range, so a port probed free there could be given to some client's
#: socket before the agent that was handed it binds it (seen with three test processes at once).
FIRST_PORT, LAST_PORT = 20_000, 32_767

#: ``LOW-HIGH``: take ports from this part of the range only. Processes that start agents at the same
#: time (the test suite's workers) each get a part of their own: a port one of them let go of for an
#: instant (a court killed, then started again on its port) is never handed to another.
RANGE_VARIABLE = "RESTRIKE_PORT_RANGE"

#: Fresh randomness at every call: a forked child must not repeat its parent's choices.
_pick = random.SystemRandom()

#: Ports this process handed out lately, oldest first. A caller often takes several ports before it
#: binds any (a court's UDP, PUB and ROUTER ports), so a port still free is not yet a port unclaimed.
_handed: dict[int, None] = {}


def port_range() -> tuple[int, int]:
    """The ports :func:`free_port` chooses from: ``RESTRIKE_PORT_RANGE`` when set, else the whole range."""
    value = os.environ.get(RANGE_VARIABLE, "").strip()
    if not value:
        return FIRST_PORT, LAST_PORT
    try:
        low, high = (int(part) for part in value.split("-"))
    except ValueError:
        raise ValueError(f"{RANGE_VARIABLE}={value!r} is not LOW-HIGH (e.g. 20000-24000)") from None
    if not FIRST_PORT <= low <= high <= LAST_PORT:
        raise ValueError(f"{RANGE_VARIABLE}={value!r} must lie within {FIRST_PORT}-{LAST_PORT}")
    return low, high


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 right now (a court binds both kinds)."""
    low, high = port_range()
    while len(_handed) > (high - low + 1) // 2:  # a long run forgets its oldest ports: they were bound or let go
        del _handed[next(iter(_handed))]
    for _ in range(1000):
        port = _pick.randint(low, high)
        if port not in _handed and _bindable(port, socket.SOCK_STREAM) and _bindable(port, socket.SOCK_DGRAM):
            _handed[port] = None
            return port
    raise OSError(f"no port between {low} and {high} is free for both TCP and UDP on 127.0.0.1")


def _bindable(port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
