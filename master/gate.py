"""The master's door: a court found by mDNS or configured is linked only once the director approved its key.

Every offer (an mDNS announcement, a configured address) is recorded in the central
database, which holds the approvals: a new node is *pending*; a node announcing another key
than the one pinned for it is *refused* and reported loudly; an approved node is linked
with its pinned key, so the CURVE handshake itself proves the court holds the secret.
Approvals made by `restrike master approve` / `revoke` in another process are picked up
within ``poll_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from master.approvals import CourtApproval, Verdict, judge
from master.db.repository import NodeRow
from master.endpoints import Endpoint
from master.links import DbWorker, SlaveLink
from runtime.curve import KeyPair, fingerprint
from runtime.errors import OperatorError
from runtime.keyfiles import load_key_pair

__all__ = ["MASTER_KEY_NAME", "CourtGate", "direct_keys", "master_keys"]

logger = logging.getLogger(__name__)

POLL_SECONDS = 2.0
MASTER_KEY_NAME = "master"


def master_keys(keys_folder: Path) -> KeyPair:
    """The master's own pair; raises ``KeyFileError`` saying how to make it."""
    return load_key_pair(keys_folder, MASTER_KEY_NAME, hint="make it with `restrike keys init master`")


def direct_keys(curve: bool, keys_folder: Path, node: NodeRow) -> tuple[KeyPair | None, str | None]:
    """``(master pair, court key)`` for a process other than the running master (a CLI tool) that
    reaches a court itself: only an approved court, only with its pinned key; ``(None, None)`` without CURVE."""
    if not curve:
        return None, None
    if not node.approved or node.public_key is None:
        raise OperatorError(
            f"court {node.court_name or node.node_id} ({node.node_id}) is {node.status}, not approved: "
            f"`restrike master approve {node.node_id}` first", 2,
        )
    return master_keys(keys_folder), node.public_key


class CourtGate:
    """Decides which offered courts get a link; owns no socket itself."""

    def __init__(
        self,
        db: DbWorker,
        *,
        link: Callable[[Endpoint, str], Awaitable[SlaveLink]],
        unlink: Callable[[SlaveLink], Awaitable[None]],
        links: Callable[[], Iterable[SlaveLink]],
        poll_seconds: float | None = None,
    ):
        self.db = db
        self._link = link
        self._unlink = unlink
        self._links = links
        self.poll_seconds = poll_seconds or POLL_SECONDS
        #: The latest offer of each node (where it is, which key it claims), linked or not.
        self.offers: dict[str, Endpoint] = {}
        self.approvals: dict[str, CourtApproval] = {}
        self._said: set[tuple[str, Verdict, str | None]] = set()
        self._lock = asyncio.Lock()

    async def async_offer(self, endpoint: Endpoint) -> Verdict:
        """A court was found or configured: record it, and link it if its key is approved."""
        node_id = endpoint.node_id
        if node_id is None:  # the config validator and mDNS both guarantee one; never link blind
            raise ValueError(f"a court offer without a node id ({endpoint.key})")
        approval = await self.db.call(
            self.db.store.offer_court, node_id, endpoint.public_key, court_name=endpoint.court,
            address=endpoint.host, pub_port=endpoint.pub_port, router_port=endpoint.router_port,
        )
        async with self._lock:
            self.approvals[node_id] = approval
            verdict = judge(approval, endpoint.public_key)
            if verdict is not Verdict.REFUSED:  # a refused offer must not displace the approved court's address
                self.offers[node_id] = endpoint
            self._report(endpoint, approval, verdict)
            if verdict is Verdict.APPROVED:
                await self._async_follow(node_id)
        return verdict

    async def async_run(self) -> None:
        """Follow approvals and revocations made elsewhere (CLI, console) while the master runs."""
        while True:
            await asyncio.sleep(self.poll_seconds)
            approvals = await self.db.call(self.db.store.court_approvals)
            async with self._lock:
                self.approvals = approvals
                await self._async_apply()

    async def _async_apply(self) -> None:
        for link in list(self._links()):
            approval = self.approvals.get(link.node_id or "")
            if approval is None or not approval.approved:
                logger.warning("Court %s (node %s) is no longer approved: disconnected", link.name, link.node_id)
                await self._unlink(link)
            elif approval.public_key != link.server_key:
                logger.warning("The approved key of court %s (node %s) changed: reconnecting with it", link.name, link.node_id)
                await self._unlink(link)
        for node_id, endpoint in list(self.offers.items()):
            verdict = judge(self.approvals.get(node_id), endpoint.public_key)
            if verdict is Verdict.APPROVED:
                await self._async_follow(node_id)

    async def _async_follow(self, node_id: str) -> None:
        """Link the node at its latest offered address; move only when the current address is silent."""
        endpoint = self.offers[node_id]
        key = self.approvals[node_id].public_key
        assert key is not None
        current = next((link for link in self._links() if link.node_id == node_id), None)
        if current is not None:
            if current.endpoint.key == endpoint.key and current.server_key == key:
                return
            if current.endpoint.key != endpoint.key and current.online:
                return  # a second address while the first still answers: keep it (checked again each poll)
            await self._unlink(current)
            if current.endpoint.key != endpoint.key:
                logger.info("Court %s moved from %s to %s", current.name, current.endpoint.key, endpoint.key)
        logger.info("Court %s (node %s) at %s: approved key %s, connecting", endpoint.court or node_id, node_id,
                    endpoint.key, fingerprint(key))
        await self._link(endpoint, key)

    def _report(self, endpoint: Endpoint, approval: CourtApproval, verdict: Verdict) -> None:
        """One log line per node, verdict and key: loud for refusals, a to-do for pending courts."""
        said = (approval.node_id, verdict, endpoint.public_key)
        if verdict is Verdict.APPROVED or said in self._said:
            return
        self._said.add(said)
        node_id = approval.node_id
        name = endpoint.court or approval.court_name or node_id
        if verdict is Verdict.REFUSED:
            assert endpoint.public_key is not None and approval.public_key is not None
            logger.error(
                "REFUSED: a court at %s claims node %s with key %s, but the key approved for %s is %s. "
                "Nothing is read from it and nothing sent to it. If that laptop or its keys were replaced "
                "on purpose: restrike master approve %s --replace",
                endpoint.host, node_id, fingerprint(endpoint.public_key), node_id, fingerprint(approval.public_key), node_id,
            )
        elif verdict is Verdict.PENDING and endpoint.public_key is not None:
            logger.warning(
                "Court %s (node %s) at %s waits for approval; its key is %s. Compare it with "
                "`restrike keys show court` on that laptop, then: restrike master approve %s",
                name, node_id, endpoint.host, fingerprint(endpoint.public_key), node_id,
            )
        elif verdict is Verdict.PENDING:
            logger.warning(
                "Configured court %s at %s has no approved key. On that laptop run `restrike keys show court`, "
                "then: restrike master approve %s --key KEY", node_id, endpoint.key, node_id,
            )
        else:
            logger.info("Court %s (node %s) at %s was revoked: ignored until approved again", name, node_id, endpoint.host)

