"""Only courts the director approved: pending until `approve`, refused with another key, gone after `revoke`.

A real court agent (CURVE on), a real master in the same process, real sockets and the
real `restrike master` commands run against the same central database. mDNS discovery
itself is exercised in test_netns.py; here the announcement is handed to the master as the
browser would hand it (address, node id, court name, public key from the TXT record).
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
from pathlib import Path

import pytest

import master.gate
from master.app import Master
from master.config import MasterConfig
from master.endpoints import Endpoint
from restrike.ports import free_port
from restrike.venue_keys import ensure_key_pair, set_up_venue
from runtime.curve import fingerprint, new_key_pair
from runtime.keyfiles import write_key_pair, write_public_key
from slave_agent.app import SlaveAgent
from slave_agent.config import SlaveConfig
from tests.support import async_wait_until, restrike_exe, send_pss


def _court_config(data_dir: Path, node_id: str, curve: bool = True) -> SlaveConfig:
    return SlaveConfig(
        data_dir=data_dir,
        node={"node_id": node_id, "court": node_id.replace("-", " ").title()},
        udp={"host": "127.0.0.1", "port": free_port()},
        publisher={"host": "127.0.0.1", "pub_port": free_port(), "router_port": free_port(), "mdns": False},
        security={"curve": curve},
    )


def _announce(agent: SlaveAgent) -> Endpoint:
    """What the mDNS browser hands the master for this court."""
    assert agent.publisher is not None and agent.publisher.guard is not None
    return Endpoint("127.0.0.1", agent.publisher.pub_port, agent.publisher.router_port, node_id=agent.store.node_id,
                    source="mdns", court=agent.config.node.court, public_key=agent.publisher.guard.pair.public)


def _master_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([restrike_exe(), "master", *args, "--db", url], capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_pending_until_approved_then_revoked(
    central_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(master.gate, "POLL_SECONDS", 0.2)
    master_keys = ensure_key_pair(tmp_path / "master" / "keys", "master")
    court_dir = tmp_path / "court"
    court_keys = ensure_key_pair(court_dir / "keys", "court")
    write_public_key(court_dir / "keys" / "masters", "master", master_keys.public)

    async def main() -> None:
        agent = SlaveAgent(_court_config(court_dir, "court-a"))
        await agent.async_startup()
        hub = Master(MasterConfig(data_dir=tmp_path / "master", database_url=central_url, mdns=False))
        await hub.async_startup()
        try:
            await hub.async_offer(_announce(agent))
            send_pss(agent.config.udp.port, *[f"clk;01:{i:02d}" for i in range(10)])
            await async_wait_until(lambda: agent.store.last_seq == 10, 15)
            assert hub.links == {}  # pending: no socket towards the court at all
            status = await asyncio.to_thread(_master_cli, central_url, "status", "--json")
            (row,) = [json.loads(line) for line in status.stdout.splitlines()]
            assert (row["node_id"], row["status"], row["key"]) == ("court-a", "pending", None)
            assert row["offered_key"] == fingerprint(court_keys.public) and row["refused_key"] is None

            approved = await asyncio.to_thread(_master_cli, central_url, "approve", "court-a")
            assert approved.returncode == 0, approved.stderr
            assert fingerprint(court_keys.public) in approved.stderr
            await async_wait_until(lambda: len(hub.links) == 1, 15)
            (link,) = hub.links.values()
            await async_wait_until(lambda: link.cursor.known.get(agent.store.epoch, 0) == 10, 15)  # caught up once approved
            assert agent.publisher is not None and agent.publisher.guard is not None
            assert agent.publisher.guard.stats.refused == 0 and agent.publisher.guard.stats.accepted >= 2

            revoked = await asyncio.to_thread(_master_cli, central_url, "revoke", "court-a")
            assert revoked.returncode == 0, revoked.stderr
            await async_wait_until(lambda: hub.links == {}, 15)
            send_pss(agent.config.udp.port, *[f"clk;02:{i:02d}" for i in range(5)])
            await async_wait_until(lambda: agent.store.last_seq == 15, 15)
            await asyncio.sleep(1.0)  # what a revoked court stores must not reach the master
            assert hub.store is not None and hub.store.count_events("court-a") == 10
            assert hub.store.court_approvals()["court-a"].status == "revoked"
        finally:
            await hub.async_shutdown()
            await agent.async_shutdown()

    with caplog.at_level(logging.INFO):
        asyncio.run(main())
    text = caplog.text
    assert "waits for approval" in text and "restrike master approve court-a" in text
    assert "no longer approved: disconnected" in text


@pytest.mark.slow
def test_approve_and_revoke_explain_what_is_wrong(tmp_path: Path) -> None:
    """The commands' own checks (the store's are tested on both backends in test_central_store)."""
    central_url = f"sqlite:///{tmp_path / 'central.sqlite3'}"
    no_key = _master_cli(central_url, "approve", "court-z")
    assert no_key.returncode == 2 and "--key" in no_key.stderr and "Traceback" not in no_key.stderr
    bad_key = _master_cli(central_url, "approve", "court-z", "--key", "short")
    assert bad_key.returncode == 2 and "40 characters" in bad_key.stderr
    first, second = new_key_pair().public, new_key_pair().public
    assert _master_cli(central_url, "approve", "court-z", "--key", first).returncode == 0
    again = _master_cli(central_url, "approve", "court-z", "--key", second)
    assert again.returncode == 2 and "--replace" in again.stderr
    assert _master_cli(central_url, "approve", "court-z", "--key", second, "--replace").returncode == 0
    unknown = _master_cli(central_url, "revoke", "court-nope")
    assert unknown.returncode == 2 and "no court" in unknown.stderr


def test_the_master_refuses_to_start_without_its_keys(tmp_path: Path) -> None:
    result = subprocess.run([restrike_exe(), "master", "run", "--data-dir", str(tmp_path), "--no-mdns"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "no master key pair" in result.stderr and "restrike keys init master" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_court_refuses_to_start_with_a_secret_key_others_can_read(tmp_path: Path) -> None:
    _, secret = write_key_pair(tmp_path / "keys", "court", new_key_pair())
    secret.chmod(0o640)
    result = subprocess.run([restrike_exe(), "slave", "run", "--data-dir", str(tmp_path), "--no-mdns",
                             "--udp-port", str(free_port())], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "chmod 600" in result.stderr and "Traceback" not in result.stderr


def test_running_without_curve_is_said_at_every_start(tmp_path: Path, central_url: str, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        agent = SlaveAgent(_court_config(tmp_path / "court", "court-p", curve=False))
        await agent.async_startup()
        assert agent.publisher is not None
        hub = Master(MasterConfig(data_dir=tmp_path / "master", database_url=central_url, mdns=False, curve=False,
                                  endpoints=[f"127.0.0.1:{agent.publisher.pub_port}:{agent.publisher.router_port}"]))
        await hub.async_startup()
        try:
            (link,) = hub.links.values()
            send_pss(agent.config.udp.port, "clk;01:00")
            await async_wait_until(lambda: link.cursor.known.get(agent.store.epoch, 0) == 1, 15)
        finally:
            await hub.async_shutdown()
            await agent.async_shutdown()

    with caplog.at_level(logging.WARNING):
        asyncio.run(main())
    assert caplog.text.count("CURVE is off") == 2  # the court and the master


def test_a_configured_court_without_its_node_id_is_a_config_error() -> None:
    from master.config import load_master_config
    from runtime.settings import ConfigError

    with pytest.raises(ConfigError, match=r"node id under CURVE.*court-3@10\.0\.0\.3:5570:5571"):
        load_master_config(None, {"endpoints": ["10.0.0.3:5570:5571"]})
    assert load_master_config(None, {"endpoints": ["10.0.0.3:5570:5571"], "curve": False}).endpoints


def test_a_court_restarted_in_the_same_process_is_reached_again(tmp_path: Path) -> None:
    """The restarted court's ZAP handler must be read (pyzmq's stop() left its poller to a reused descriptor)."""
    url = f"sqlite:///{tmp_path / 'central.sqlite3'}"
    set_up_venue(tmp_path / "master" / "keys", {"court-r": tmp_path / "court" / "keys"}, url)
    config = _court_config(tmp_path / "court", "court-r")

    async def main() -> None:
        agent = SlaveAgent(config)
        await agent.async_startup()
        hub = Master(MasterConfig(data_dir=tmp_path / "master", database_url=url, mdns=False, endpoints=[
            f"court-r@127.0.0.1:{config.publisher.pub_port}:{config.publisher.router_port}"]))
        await hub.async_startup()
        try:
            (link,) = hub.links.values()
            await async_wait_until(lambda: link.online, 15, "the court online")
            await agent.async_shutdown()
            agent = SlaveAgent(config)  # same ports, same keys, same process
            await agent.async_startup()
            send_pss(config.udp.port, "clk;01:00")
            await async_wait_until(lambda: link.cursor.known.get(agent.store.epoch, 0) == 1, 15, "the event of the new agent")
        finally:
            await hub.async_shutdown()
            await agent.async_shutdown()

    asyncio.run(main())
