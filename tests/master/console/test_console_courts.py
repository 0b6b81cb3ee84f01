"""The courts page through NiceGUI's simulated user: a court waiting for approval is approved from the page."""

from __future__ import annotations

import asyncio

import pytest
import zmq

from master.db.store import CentralStore
from tests.master.console.conftest import ConsoleUnderTest

pytestmark = pytest.mark.asyncio


async def test_a_pending_court_is_approved_after_a_confirmation(console: ConsoleUnderTest) -> None:
    key = zmq.curve_keypair()[0].decode()
    with CentralStore(console.master.url) as store:
        store.upsert_node("court-9", court_name="Court 9", status="pending", offered_key=key, offered_from="10.0.0.9")
    await console.master.async_startup()  # the approval is written by the master's database thread
    try:
        await console.sign_in()
        user = console.user
        await user.open("/")  # type: ignore[attr-defined]
        await user.should_see("PENDING", retries=100)  # type: ignore[attr-defined]  # read after the page is out
        user.find(marker="approve-court-9").click()  # type: ignore[attr-defined]
        await user.should_see("Approve Court 9?")  # type: ignore[attr-defined]
        user.find(marker="confirm-approve").click()  # type: ignore[attr-defined]
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            with CentralStore(console.master.url) as store:
                node = next(n for n in store.list_nodes() if n["node_id"] == "court-9")
            if node["approved"]:
                break
            assert asyncio.get_running_loop().time() < deadline, "the court was never approved"
            await asyncio.sleep(0.05)
        assert node["public_key"] == key and node["approved_by"] == "director"
    finally:
        await console.master.async_shutdown()
