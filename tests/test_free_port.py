"""free_port: below the kernel's ephemeral range, free for both TCP and UDP when handed out."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from restrike.ports import FIRST_PORT, LAST_PORT, RANGE_VARIABLE, free_port


def test_ports_are_below_the_ephemeral_range_and_bind_for_tcp_and_udp() -> None:
    low, _high = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert low > LAST_PORT, "free ports must not come from the range outgoing connections take theirs from"
    ports = {free_port() for _ in range(20)}  # from this test worker's part of the range, when there are several
    assert len(ports) > 1  # chosen at random, not a fixed sequence
    for port in ports:
        assert FIRST_PORT <= port <= LAST_PORT
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", port))
            udp.bind(("127.0.0.1", port))


def test_a_part_of_the_range_can_be_asked_for_and_a_bad_one_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RANGE_VARIABLE, "21000-21049")
    assert all(21000 <= free_port() <= 21049 for _ in range(20))
    for bad in ("21000", "a-b", "1000-2000"):
        monkeypatch.setenv(RANGE_VARIABLE, bad)
        with pytest.raises(ValueError, match=RANGE_VARIABLE):
            free_port()


def test_a_port_handed_out_is_not_handed_out_again_before_it_is_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """A court takes its UDP, PUB and ROUTER ports before it binds any: they must differ."""
    monkeypatch.setenv(RANGE_VARIABLE, "21100-21109")
    taken = [free_port() for _ in range(5)]  # none bound yet; at random from 10, a repeat would be likely
    assert len(set(taken)) == 5, taken
