"""Resynchronisation on real loopback sockets: requests out, answers in, stored flagged, folded right."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable

import pytest

from restrike.ports import free_port
from restrike.sender import PullResponder
from shared.pss.pull import RESYNC_REQUEST
from slave_agent.db.store import Datagram, EventStore
from slave_agent.ingest import UdpIngest
from slave_agent.resync import Resync
from tests.resync_cases import Cut, cuts_after_points, resynced_view
from tests.support import async_wait_until

Body = Callable[[UdpIngest, Resync], Awaitable[None]]


def run_agent(store: EventStore, body: Body, **options: object) -> None:
    """Ingest on 127.0.0.1 plus resync, as the agent wires them, around ``body``."""

    async def main() -> None:
        ingest = UdpIngest(store)
        await ingest.async_start("127.0.0.1", 0, 1024 * 1024)
        resync = Resync(ingest, **options)  # type: ignore[arg-type]
        try:
            await resync.async_start("127.0.0.1")
            await body(ingest, resync)
        finally:
            await resync.async_stop()
            await ingest.async_stop()

    asyncio.run(main())


def a_court_mid_match() -> Cut:
    """The second match of a simulated session, in round 2 or later, right after a point."""
    cuts = [c for c in cuts_after_points(3, "gen2") if c.match_index() == 1 and c.truth().round >= 2]
    return cuts[0]


def responder_at(cut: Cut) -> PullResponder:
    responder = PullResponder("127.0.0.1", 0)
    for line in cut.sent:
        responder.sent(line.encode() + b"\r\n")
    return responder


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "slave_agent.resync" and r.levelno == level]


def test_a_configured_sender_is_asked_at_start_and_its_answers_rebuild_the_match(
    store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    cut = a_court_mid_match()
    expected = cut.memory(b"\r\n").answers(RESYNC_REQUEST)
    # The agent stored an earlier match before it stopped.
    store.write_batch([Datagram(1, b"pre;FightLoaded"), Datagram(2, b"mch;999;Final;M -68kg")])
    with responder_at(cut) as responder:

        async def body(ingest: UdpIngest, resync: Resync) -> None:
            await async_wait_until(lambda: store.last_seq == 2 + len(expected), 10, "the answers stored")
            await async_wait_until(lambda: any(m.startswith("Resync") for m in messages(caplog, logging.INFO)),
                                   10, "the log line")

        run_agent(store, body, sender_port=responder.port, sender_host="127.0.0.1", answer_seconds=0.3)
        assert responder.requests == 1

    rows = store.events()[2:]
    assert [r.raw_datagram for r in rows] == expected
    assert all(r.resync and r.valid for r in rows)
    assert resynced_view(store.match_state) == resynced_view(cut.truth())
    # The agent never saw this match load: the answer naming it opened its row, with no milestones.
    number = cut.truth().match_number
    assert {r.match_number for r in rows if r.code != "ref"} <= {number}
    match_rows = store.conn.execute(
        "SELECT match_number, blue_name, red_name, ready_ms, finished_ms, status FROM matches ORDER BY id"
    ).fetchall()
    truth = cut.truth()
    assert match_rows[1] == (number, truth.blue.name, truth.red.name, None, None, "running")
    assert match_rows[0][0] == "999" and len(match_rows) == 2
    assert messages(caplog, logging.INFO)[-1] == (
        "Resynchronised with the scoring software at 127.0.0.1: "
        f"{len(expected)} answer(s) to 10 pull requests stored"
    )
    assert messages(caplog, logging.WARNING) == []


def test_the_first_datagram_of_a_new_sender_makes_the_agent_ask_it_once(store: EventStore) -> None:
    cut = a_court_mid_match()
    expected = cut.memory(b"\r\n").answers(RESYNC_REQUEST)
    with responder_at(cut) as responder, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as court:

        async def body(ingest: UdpIngest, resync: Resync) -> None:
            assert ingest.address is not None
            assert resync.stats.requests == 0  # no address configured: wait for the sender
            court.sendto(cut.rest[0].encode(), ingest.address)
            await async_wait_until(lambda: store.last_seq == 1 + len(expected), 10, "live datagram and answers")
            for line in cut.rest[1:20]:
                court.sendto(line.encode(), ingest.address)
            await async_wait_until(lambda: store.last_seq == 20 + len(expected), 10, "the next datagrams")

        run_agent(store, body, sender_port=responder.port)
        assert responder.requests == 1

    rows = store.events()
    assert [r.resync for r in rows] == [False] + [True] * len(expected) + [False] * 19
    assert rows[0].raw == cut.rest[0]


def test_a_sender_heard_starting_is_not_asked(store: EventStore) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listen, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as court:
        listen.bind(("127.0.0.1", 0))
        listen.setblocking(False)

        async def body(ingest: UdpIngest, resync: Resync) -> None:
            assert ingest.address is not None
            for line in (b"Udp Port 8888 connected;", b"pre;FightLoaded", b"rnd;1", b"clk;02:00"):
                court.sendto(line, ingest.address)
            await async_wait_until(lambda: store.last_seq == 4, 10, "the datagrams stored")

        run_agent(store, body, sender_port=listen.getsockname()[1], answer_seconds=0.1)
        with pytest.raises(BlockingIOError):
            listen.recv(100)  # nothing it could have missed: it was heard starting


def test_a_silent_sender_costs_one_request_and_one_warning(
    store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as court:
        silent.bind(("127.0.0.1", 0))
        silent.setblocking(False)
        port = silent.getsockname()[1]

        def requests() -> list[bytes]:
            got = []
            while True:
                try:
                    got.append(silent.recv(65535))
                except BlockingIOError:
                    return got

        async def body(ingest: UdpIngest, resync: Resync) -> None:
            assert ingest.address is not None
            # Asked at start; quiet: the sender may simply not be running yet.
            await async_wait_until(lambda: "No answer from 127.0.0.1" in caplog.text, 10, "the start request to end")
            assert messages(caplog, logging.WARNING) == []
            for n in range(200):  # its first datagram proves it is up: asked once more, and only once
                court.sendto(f"clk;01:{n % 60:02d}".encode(), ingest.address)
            await async_wait_until(lambda: store.last_seq == 200, 10, "the live datagrams stored")
            await async_wait_until(lambda: messages(caplog, logging.WARNING) != [], 10, "the warning")
            for _ in range(50):
                court.sendto(b"clk;00:30", ingest.address)
            await async_wait_until(lambda: store.last_seq == 250, 10, "more live datagrams stored")

        run_agent(store, body, sender_port=port, sender_host="127.0.0.1", answer_seconds=0.2)
        assert requests() == [RESYNC_REQUEST, RESYNC_REQUEST]

    assert messages(caplog, logging.WARNING) == [
        f"The scoring software at 127.0.0.1 did not answer pull requests on UDP port {port} "
        "within 0.2 s; the match fills in from live traffic. Check its listen port against [resync] sender_port."
    ]
    assert not any(r.resync for r in store.events())


def test_nothing_listening_on_the_listen_port_is_one_warning_not_an_error(
    store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as court:

        async def body(ingest: UdpIngest, resync: Resync) -> None:
            assert ingest.address is not None
            court.sendto(b"rnd;1", ingest.address)
            await async_wait_until(lambda: messages(caplog, logging.WARNING) != [], 10, "the warning")
            court.sendto(b"rnd;2", ingest.address)
            await async_wait_until(lambda: store.last_seq == 2, 10, "ingest going on")

        run_agent(store, body, sender_port=free_port(), answer_seconds=0.2)

    (warning,) = messages(caplog, logging.WARNING)
    assert "did not answer" in warning
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_malformed_answers_are_stored_flagged_and_ingest_goes_on(store: EventStore) -> None:
    junk = [b"sc1;x;sc2;1", b"\xff\xfeclk;01:00", b"mch;", b"wrd;rd1;9", b"A" * 9000, b"\x00", b"sc1;4;sc2;2\r\n"]

    class Garbler(asyncio.DatagramProtocol):
        """A sender that answers every request with junk (and one good packet)."""

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            for packet in junk:
                self.transport.sendto(packet, addr)  # type: ignore[attr-defined]

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as court:

        async def body(ingest: UdpIngest, resync: Resync) -> None:
            assert ingest.address is not None
            court.sendto(b"rnd;2", ingest.address)  # the live datagram that makes the agent ask
            await async_wait_until(lambda: store.last_seq == 1 + len(junk), 10, "every answer stored")
            court.sendto(b"clk;01:00;start", ingest.address)
            await async_wait_until(lambda: store.last_seq == 2 + len(junk), 10, "ingest going on")

        async def with_garbler(ingest: UdpIngest, resync: Resync) -> None:
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                Garbler, local_addr=("127.0.0.1", resync.sender_port)
            )
            try:
                await body(ingest, resync)
            finally:
                transport.close()

        run_agent(store, with_garbler, sender_port=free_port())

    rows = store.events()
    answers = rows[1:-1]
    assert [r.raw_datagram for r in answers] == junk
    assert all(r.resync for r in answers) and not rows[0].resync and not rows[-1].resync
    assert [r.valid for r in answers] == [False] * 6 + [True]
    assert all(r.error for r in answers[:-1])
    state = store.match_state
    assert (state.round, state.score, state.clock_running) == (2, (4, 2), True)


def test_senders_beyond_the_cap_are_not_asked(store: EventStore, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listen:
        listen.bind(("0.0.0.0", 0))
        listen.setblocking(False)
        courts = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
        try:
            for n, court in enumerate(courts, 1):
                court.bind((f"127.0.0.{n}", 0))

            async def body(ingest: UdpIngest, resync: Resync) -> None:
                assert ingest.address is not None
                for court in courts * 2:
                    court.sendto(b"rnd;1", ingest.address)
                await async_wait_until(lambda: store.last_seq == 6, 10, "every datagram stored")

            run_agent(store, body, sender_port=listen.getsockname()[1], max_senders=2, answer_seconds=5)
        finally:
            for court in courts:
                court.close()
        asked = []
        while True:
            try:
                asked.append(listen.recvfrom(100))
            except BlockingIOError:
                break
    assert sorted(data for data, _ in asked) == [RESYNC_REQUEST] * 2
    assert messages(caplog, logging.WARNING) == [
        "2 different senders seen since start; not asking new ones (127.0.0.3) for their state"
    ]
