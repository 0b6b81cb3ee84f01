"""Hostile peers on the venue network, counted: every attempt is made for real, none gets through.

A court agent (CURVE on) and its approved master run for real; beside them the test plays a
laptop on the LAN that tries to read the court's events, fetch its history, command it,
impersonate it, and a master that replays and mangles commands. Each attempt is counted and
the test asserts that none succeeded, while the real master keeps receiving and commanding
(the positive control: the window was open, the attacks simply failed).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
import time
import uuid
from collections import Counter
from pathlib import Path

import msgpack
import pytest
import zmq
import zmq.asyncio

from master.app import Master
from master.config import MasterConfig
from master.endpoints import Endpoint
from restrike.ports import free_port
from restrike.venue_keys import ensure_key_pair, set_up_venue
from runtime.curve import KeyPair, new_key_pair, secure_client
from shared.commands import Action
from shared.wire import WIRE_VERSION, CatchupRequest, Command, FileRequest, decode, encode
from slave_agent.app import SlaveAgent
from slave_agent.config import SlaveConfig
from tests.support import async_wait_until

pytestmark = pytest.mark.slow

EVENTS = 40


def _court_config(data_dir: Path, node_id: str) -> SlaveConfig:
    return SlaveConfig(
        data_dir=data_dir,
        node={"node_id": node_id, "court": "Court 1"},
        udp={"host": "127.0.0.1", "port": free_port()},
        publisher={"host": "127.0.0.1", "pub_port": free_port(), "router_port": free_port(), "mdns": False,
                   "heartbeat_seconds": 0.2},
        obs={"rec": {"enabled": False}, "str": {"enabled": False}},
        ivr={"videos_root": str(data_dir / "videos")},
    )


def _send_udp(port: int, count: int, start: int = 0) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(start, start + count):
            sock.sendto(f"clk;01:{i % 60:02d}".encode(), ("127.0.0.1", port))


def _command(node_id: str, text: str, *, seconds: float = 5.0, command_id: str | None = None) -> Command:
    now = time.time_ns() // 1_000_000
    return Command(command_id=command_id or uuid.uuid4().hex, node_id=node_id, action="message", args={"text": text},
                   sent_ms=now, deadline_ms=now + int(seconds * 1000))


def _messages(data_dir: Path) -> list[str]:
    conn = sqlite3.connect(data_dir / "restrike-slave.sqlite3")
    try:
        return [row[0] for row in conn.execute("SELECT text FROM director_messages ORDER BY id")]
    finally:
        conn.close()


def _drain(sock: zmq.asyncio.Socket) -> int:
    """Messages waiting on a socket (the attacker's haul)."""
    plain = zmq.Socket.shadow(sock.underlying)
    got = 0
    while True:
        try:
            plain.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return got
        got += 1


@pytest.mark.expect_error_logs  # the impostor is refused with an ERROR, as an operator must see it
def test_strangers_get_nothing_and_an_impostor_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'central.sqlite3'}"
    real = _court_config(tmp_path / "court", "court-1")
    fake = _court_config(tmp_path / "impostor", "court-1")  # same node id, its own key pair
    master_keys = set_up_venue(tmp_path / "master" / "keys", {"court-1": real.data_dir / "keys"}, url)
    ensure_key_pair(fake.data_dir / "keys", "court")
    (fake.data_dir / "keys" / "masters").mkdir()
    (fake.data_dir / "keys" / "masters" / "master.key").write_text(master_keys.public)  # it would love to hear from us
    attempts: Counter[str] = Counter()
    got_through: Counter[str] = Counter()

    async def main() -> None:
        court, impostor = SlaveAgent(real), SlaveAgent(fake)
        await court.async_startup()
        await impostor.async_startup()
        assert court.publisher is not None and court.publisher.guard is not None
        assert impostor.publisher is not None and impostor.publisher.guard is not None
        court_key = court.publisher.guard.pair.public
        hub = Master(MasterConfig(data_dir=tmp_path / "master", database_url=url, mdns=False, http_port=0,
                                  heartbeat_seconds=0.2,
                                  endpoints=[f"court-1@127.0.0.1:{real.publisher.pub_port}:{real.publisher.router_port}"]))
        await hub.async_startup()
        ctx = zmq.asyncio.Context()
        stranger = new_key_pair()
        try:
            (link,) = hub.links.values()
            await async_wait_until(lambda: link.online, 15, "the real court online")

            # 1. Subscribers without an approved key: plain, a stranger's key, a wrong server key.
            subs: dict[str, zmq.asyncio.Socket] = {}
            for name, keys, server in (("plain", None, None), ("stranger key", stranger, court_key),
                                       ("wrong server key", stranger, new_key_pair().public)):
                sub = ctx.socket(zmq.SUB)
                sub.setsockopt(zmq.LINGER, 0)
                if keys is not None and server is not None:
                    secure_client(sub, keys, server)
                sub.subscribe(b"")
                sub.connect(f"tcp://127.0.0.1:{real.publisher.pub_port}")
                subs[f"subscriber ({name})"] = sub
                attempts["subscribe"] += 1

            # 2. DEALERs without the master's key: each asks for the history, a clip, and sends a command.
            dealers: dict[str, zmq.asyncio.Socket] = {}
            for name, keys in (("plain", None), ("stranger key", stranger)):
                dealer = ctx.socket(zmq.DEALER)
                dealer.setsockopt(zmq.LINGER, 0)
                if keys is not None:
                    secure_client(dealer, keys, court_key)
                dealer.connect(f"tcp://127.0.0.1:{real.publisher.router_port}")
                dealers[f"dealer ({name})"] = dealer
            for dealer in dealers.values():
                for payload in (encode(CatchupRequest(request_id=1, epoch=None, after_seq=0)),
                                encode(FileRequest(request_id=1, path="../../etc/passwd", offset=0, size=1024)),
                                encode(_command("court-1", "intruder"))):
                    await dealer.send(payload)  # queued until the connection (never) completes its handshake
                    attempts["ask the court"] += 1

            # 3. An impostor announces the approved node id with its own key (as mDNS would carry it).
            await hub.async_offer(Endpoint("127.0.0.1", fake.publisher.pub_port, fake.publisher.router_port,
                                           node_id="court-1", source="mdns", court="Court 1",
                                           public_key=impostor.publisher.guard.pair.public))
            attempts["impersonate (mDNS)"] += 1
            # ... and a master configured with the right node id at the impostor's address: the CURVE
            # handshake needs the secret of the approved key, which the impostor lacks.
            tricked = Master(MasterConfig(data_dir=tmp_path / "master2", database_url=f"sqlite:///{tmp_path / 'c2.sqlite3'}",
                                          keys_dir=tmp_path / "master" / "keys", mdns=False, http_port=0, heartbeat_seconds=0.2,
                                          endpoints=[f"court-1@127.0.0.1:{fake.publisher.pub_port}:{fake.publisher.router_port}"]))
            set_up_venue(tmp_path / "master" / "keys", {"court-1": real.data_dir / "keys"}, f"sqlite:///{tmp_path / 'c2.sqlite3'}")
            await tricked.async_startup()
            attempts["impersonate (address)"] += 1

            # The window: both courts score, the real master must get every event, the strangers none.
            _send_udp(real.udp.port, EVENTS)
            _send_udp(fake.udp.port, EVENTS)
            await async_wait_until(lambda: link.cursor.known.get(court.store.epoch, 0) == EVENTS, 20, "the real master's events")
            assert hub.control is not None
            result = await hub.control.async_send(Action.MESSAGE, {"text": "from the director"})
            assert [r.outcome for r in result.results] == ["done"]  # the real master commands fine meanwhile
            await asyncio.sleep(1.0)  # a few more heartbeats for anyone listening

            for name, sub in subs.items():
                got_through[name] += _drain(sub)
            for name, dealer in dealers.items():
                got_through[name] += _drain(dealer)  # a catch-up page, a clip chunk or a command result
            got_through["commands run for strangers"] += _messages(real.data_dir).count("intruder")
            assert hub.store is not None
            got_through["impostor events stored"] += hub.store.count_events("court-1") - EVENTS
            assert tricked.store is not None
            got_through["impostor events stored"] += tricked.store.count_events()
            (tricked_link,) = tricked.links.values()
            got_through["impostor linked"] += int(tricked_link.online) + int(link.endpoint.pub_port != real.publisher.pub_port)
            await async_wait_until(lambda: "never completes the CURVE handshake" in caplog.text, 15, "the failed handshakes said")
            refused = court.publisher.guard.stats.refused
            await tricked.async_shutdown()
        finally:
            await hub.async_shutdown()
            await court.async_shutdown()
            await impostor.async_shutdown()
            ctx.destroy(linger=0)
        assert refused >= 2, "ZAP saw and refused the stranger's key (subscriber and dealer)"

    with caplog.at_level(logging.WARNING):
        asyncio.run(main())
    print(f"\nattempts {dict(attempts)}; got through {dict(got_through)}")
    assert sum(attempts.values()) == 3 + 6 + 2
    assert sum(got_through.values()) == 0, dict(got_through)
    assert "REFUSED: a court at 127.0.0.1 claims node court-1" in caplog.text
    assert "is not one of this court's masters" in caplog.text
    assert "Court court-1 at 127.0.0.1" in caplog.text and "never completes the CURVE handshake" in caplog.text


def test_replayed_and_malformed_command_frames_are_rejected_and_counted(tmp_path: Path) -> None:
    """Frames from a peer holding the master's key (a buggy or replaying master): none runs twice, none breaks the court."""
    url = f"sqlite:///{tmp_path / 'central.sqlite3'}"
    config = _court_config(tmp_path / "court", "court-1")
    master_keys: KeyPair = set_up_venue(tmp_path / "master" / "keys", {"court-1": config.data_dir / "keys"}, url)
    attempts: Counter[str] = Counter()
    got_through: Counter[str] = Counter()

    async def main() -> None:
        court = SlaveAgent(config)
        await court.async_startup()
        assert court.publisher is not None and court.publisher.guard is not None and court.commands is not None
        ctx = zmq.asyncio.Context()
        dealer = ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        secure_client(dealer, master_keys, court.publisher.guard.pair.public)
        dealer.connect(f"tcp://127.0.0.1:{config.publisher.router_port}")
        try:
            async def ask(payload: bytes | list[bytes]) -> object | None:
                if isinstance(payload, list):
                    await dealer.send_multipart(payload)
                else:
                    await dealer.send(payload)
                try:
                    return decode(await asyncio.wait_for(dealer.recv(), 2.0))
                except TimeoutError:
                    return None

            original = _command("court-1", "once")
            first = await ask(encode(original))
            assert first is not None and first.outcome == "done"  # type: ignore[attr-defined]
            for _ in range(5):  # the same frame, replayed
                again = await ask(encode(original))
                attempts["replayed command"] += 1
                got_through["replayed command"] += int(again is None or not again.replayed)  # type: ignore[attr-defined]
            now = time.time_ns() // 1_000_000
            malformed: list[bytes | list[bytes]] = [
                b"\xc1 not msgpack",
                msgpack.packb({"v": WIRE_VERSION, "type": "command"}),  # no id, no action
                msgpack.packb({"v": WIRE_VERSION, "type": "command", "command_id": "x" * 32, "node_id": "court-1",
                               "action": "message", "args": {}, "sent_ms": now, "deadline_ms": now + 1000}),  # id not hex
                msgpack.packb({"v": 99, "type": "command"}),
                [b"two", b"frames"],
                encode(_command("court-1", "late", seconds=0.001)),  # arrives after its deadline
                encode(_command("court-2", "not for this court")),
                encode(Command(command_id=uuid.uuid4().hex, node_id="court-1", action="message", args={"text": ""},
                               sent_ms=now, deadline_ms=now + 5000)),  # arguments the action refuses
                encode(Command(command_id=uuid.uuid4().hex, node_id="court-1", action="self_destruct", args={},
                               sent_ms=now, deadline_ms=now + 5000)),
            ]
            bad_before = court.publisher.stats.bad_messages
            for payload in malformed:
                await asyncio.sleep(0.002)
                answer = await ask(payload)
                attempts["malformed command"] += 1
                got_through["malformed command"] += int(answer is not None and getattr(answer, "outcome", None) == "done")
            assert court.publisher.stats.bad_messages - bad_before == 5  # undecodable: counted, no answer
            after = await ask(encode(_command("court-1", "still working")))
            assert after is not None and after.outcome == "done"  # type: ignore[attr-defined]
            got_through["messages shown"] += len(_messages(config.data_dir)) - 2  # "once" and "still working" only
            assert court.commands.stats.ran == 2
        finally:
            dealer.close(linger=0)
            ctx.destroy(linger=0)
            await court.async_shutdown()

    asyncio.run(main())
    print(f"\nattempts {dict(attempts)}; got through {dict(got_through)}")
    assert attempts == Counter({"replayed command": 5, "malformed command": 9})
    assert sum(got_through.values()) == 0, dict(got_through)
