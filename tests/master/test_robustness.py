"""Bad input on the ZeroMQ links is counted and logged, and never stops either side."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import msgpack
import pytest
import zmq
import zmq.asyncio

import shared.wire
from master.app import Master
from master.config import MasterConfig
from restrike.ports import free_port
from restrike.venue_keys import set_up_venue
from runtime.curve import secure_client
from shared.wire import TOPIC_EVENT, TOPIC_HEARTBEAT, WIRE_VERSION, CatchupRequest, decode, encode
from slave_agent.app import SlaveAgent
from slave_agent.config import SlaveConfig
from tests.support import async_wait_until, send_pss


def test_garbage_on_both_links_is_counted_and_ingest_goes_on(
    central_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared.wire, "MAX_MESSAGE_BYTES", 200_000)  # so "oversized" is cheap to send

    master_keys = set_up_venue(tmp_path / "master" / "keys", {"court-x": tmp_path / "court" / "keys"}, central_url)

    async def main() -> None:
        agent = SlaveAgent(SlaveConfig(
            data_dir=tmp_path / "court",
            node={"node_id": "court-x", "court": "Court X"},
            udp={"host": "127.0.0.1", "port": free_port()},
            publisher={"host": "127.0.0.1", "pub_port": free_port(), "router_port": free_port(), "mdns": False},
        ))
        await agent.async_startup()
        assert agent.publisher is not None
        master = Master(MasterConfig(
            data_dir=tmp_path / "master", database_url=central_url, mdns=False,
            endpoints=[f"court-x@127.0.0.1:{agent.publisher.pub_port}:{agent.publisher.router_port}"],
        ))
        await master.async_startup()
        (link,) = master.links.values()
        try:
            send_pss(agent.config.udp.port, *[f"clk;01:{i:02d}" for i in range(30)])
            await async_wait_until(lambda: link.cursor.known.get(agent.store.epoch, 0) == 30, 15.0)

            pub = agent.publisher.pub
            garbage = [
                [TOPIC_EVENT, b"\xc1not msgpack"],
                [TOPIC_EVENT, msgpack.packb([1, 2, 3])],
                [TOPIC_HEARTBEAT, msgpack.packb({"v": 99, "type": "heartbeat"})],
                [TOPIC_EVENT, msgpack.packb({"v": WIRE_VERSION, "type": "event", "record": {"seq": -5}})],
                [TOPIC_EVENT, b"\x00" * 300_000],
                [b"what", b"is", b"this"],
                [TOPIC_EVENT, msgpack.packb({"v": WIRE_VERSION, "type": "ack", "epoch": "e", "seq": 1})],
            ]
            for frames in garbage:
                await pub.send_multipart(frames)
            await async_wait_until(lambda: link.stats.bad_messages >= len(garbage), 15.0)

            # The slave's ROUTER gets garbage from a peer holding the master's key too, and keeps answering.
            ctx = zmq.asyncio.Context()
            dealer = ctx.socket(zmq.DEALER)
            secure_client(dealer, master_keys, agent.publisher.guard.pair.public)  # type: ignore[union-attr]
            dealer.connect(f"tcp://127.0.0.1:{agent.publisher.router_port}")
            for payload in (b"junk", msgpack.packb({"v": WIRE_VERSION, "type": "catchup_page"})):
                await dealer.send(payload)
            await dealer.send_multipart([b"two", b"frames"])
            await dealer.send(encode(CatchupRequest(request_id=7, epoch=agent.store.epoch, after_seq=25)))
            page = decode(await asyncio.wait_for(dealer.recv(), 5))
            assert page.type == "catchup_page" and [r.seq for r in page.records] == [26, 27, 28, 29, 30]  # type: ignore[union-attr]
            assert agent.publisher.stats.bad_messages == 3
            dealer.close(linger=0)
            ctx.destroy(linger=0)

            send_pss(agent.config.udp.port, *[f"clk;00:{i:02d}" for i in range(20)])
            await async_wait_until(lambda: link.cursor.known.get(agent.store.epoch, 0) == 50, 15.0)
            assert master.store is not None
            assert master.store.count_events("court-x") == 50
        finally:
            await master.async_shutdown()
            await agent.async_shutdown()

    with caplog.at_level(logging.WARNING):
        asyncio.run(main())
    warnings = [r.getMessage() for r in caplog.records if "Ignored a bad message" in r.getMessage()]
    assert 1 <= len(warnings) <= 3  # loud for the first few, then quiet
    assert any("unsupported wire version 99" in w or "not a msgpack" in w for w in warnings)
