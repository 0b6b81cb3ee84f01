"""Two network namespaces joined by a veth pair: a master laptop and a court laptop on one cable.

Addresses come from 10.200.0.0/24 and exist only inside the namespaces the test made; nothing
is added to, or sent on, the host's own interfaces. Both namespaces are deleted afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["VethPair", "netns_unavailable", "run_in", "veth_pair"]

SUBNET_BITS = 24
MASTER_IP = "10.200.0.1"
SLAVE_IP = "10.200.0.2"
IFACE = "veth0"  # same name in both namespaces: they never share a name space with the host


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


def netns_unavailable() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    probe = f"rs-probe-{uuid.uuid4().hex[:8]}"
    try:
        made = _ip("netns", "add", probe, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`ip netns` unavailable: {exc}"
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None



@dataclass(frozen=True)
class VethPair:
    """``master_ns`` holds 10.200.0.1, ``slave_ns`` holds 10.200.0.2, both on ``veth0``."""

    master_ns: str
    slave_ns: str
    iface: str = IFACE
    master_ip: str = MASTER_IP
    slave_ip: str = SLAVE_IP

    @staticmethod
    def prefix(ns: str, env: dict[str, str] | None = None) -> tuple[str, ...]:
        """Run a command inside ``ns`` (``ip netns exec`` and ``env`` both exec: the pid is the program's)."""
        extra = ("env", *(f"{k}={v}" for k, v in env.items())) if env else ()
        return ("ip", "netns", "exec", ns, *extra)

    def set_link(self, ns: str, up: bool) -> None:
        _ip("-n", ns, "link", "set", "dev", self.iface, "up" if up else "down")



def _configure(ns: str, address: str) -> None:
    _ip("-n", ns, "link", "set", "dev", "lo", "up")
    _ip("-n", ns, "addr", "add", f"{address}/{SUBNET_BITS}", "dev", IFACE)
    _ip("-n", ns, "link", "set", "dev", IFACE, "multicast", "on", "up")
    # mDNS to 224.0.0.251 must leave by the veth even where the socket does not pick an interface.
    _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", IFACE)


@contextmanager
def veth_pair(tag: str = "") -> Iterator[VethPair]:
    """Make both namespaces and the cable between them; delete them whatever happens."""
    hexid = uuid.uuid4().hex[:8]
    pair = VethPair(master_ns=f"rs-m-{tag}{hexid}", slave_ns=f"rs-s-{tag}{hexid}")
    made: list[str] = []
    try:
        for ns in (pair.master_ns, pair.slave_ns):
            _ip("netns", "add", ns)
            made.append(ns)
        # Created inside the master namespace, its peer moved straight into the slave's: the host never sees it.
        _ip("-n", pair.master_ns, "link", "add", IFACE, "type", "veth", "peer", "name", IFACE, "netns", pair.slave_ns)
        _configure(pair.master_ns, pair.master_ip)
        _configure(pair.slave_ns, pair.slave_ip)
        yield pair
    finally:
        for ns in reversed(made):
            _kill_leftovers(ns)
            _ip("netns", "del", ns, check=False)


def _kill_leftovers(ns: str) -> None:
    """Processes a failed test left inside a namespace we made (by pid, never by name)."""
    found = _ip("netns", "pids", ns, check=False)
    for pid in found.stdout.split():
        try:
            os.kill(int(pid), 9)
        except (ProcessLookupError, ValueError):
            pass


def run_in(ns: str, args: Sequence[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *args], capture_output=True, text=True, timeout=timeout, check=False)
