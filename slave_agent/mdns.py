"""mDNS advertisement of a court (python-zeroconf): where the slave is, not whether it is alive.

Liveness comes from heartbeats; a crashed slave's record lingers for over an hour.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import psutil
from zeroconf import IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from runtime import __version__
from shared.wire import SERVICE_TYPE

__all__ = ["Advertiser", "local_addresses"]

logger = logging.getLogger(__name__)

ADDRESS_CHECK_SECONDS = 10.0


def local_addresses(interface: str | None = None) -> list[str]:
    """IPv4 addresses to advertise: the configured one, else every non-loopback one (else loopback)."""
    if interface:
        return [interface]
    found = sorted(
        addr.address
        for addrs in psutil.net_if_addrs().values()
        for addr in addrs
        if addr.family == socket.AF_INET and not addr.address.startswith("127.")
    )
    return found or ["127.0.0.1"]


class Advertiser:
    """Registers ``<court>-<node>._restrike-slave._tcp.local.`` and keeps its addresses current."""

    def __init__(
        self,
        *,
        node_id: str,
        court: str,
        pub_port: int,
        router_port: int,
        interface: str | None = None,
        public_key: str | None = None,
    ):
        """``public_key``: the court's CURVE key, announced so the director can approve it (None: plain)."""
        self.node_id = node_id
        self.public_key = public_key
        self.court = court
        self.pub_port = pub_port
        self.router_port = router_port
        self.interface = interface
        self._zc: AsyncZeroconf | None = None
        self._info: ServiceInfo | None = None
        self._watch: asyncio.Task[None] | None = None

    def _service_info(self, addresses: list[str]) -> ServiceInfo:
        safe_court = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.court)[:30]
        return ServiceInfo(
            SERVICE_TYPE,
            f"{safe_court}-{self.node_id}.{SERVICE_TYPE}",
            addresses=[socket.inet_aton(a) for a in addresses],
            port=self.router_port,
            properties={
                "node_id": self.node_id,
                "court": self.court,
                "version": __version__,
                "pub_port": str(self.pub_port),
                "router_port": str(self.router_port),
                **({"public_key": self.public_key} if self.public_key else {}),
            },
            server=f"restrike-{self.node_id}.local.",
        )

    async def async_start(self) -> None:
        interfaces = [self.interface] if self.interface else None
        self._zc = (
            AsyncZeroconf(ip_version=IPVersion.V4Only, interfaces=interfaces)
            if interfaces
            else AsyncZeroconf(ip_version=IPVersion.V4Only)
        )
        addresses = local_addresses(self.interface)
        self._info = self._service_info(addresses)
        await self._zc.async_register_service(self._info, allow_name_change=True)
        self._watch = asyncio.create_task(self._async_watch_addresses(), name="mdns-address-watch")
        logger.info("Advertised over mDNS as %s at %s", self._info.name, ", ".join(addresses))

    async def async_stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        if self._zc is not None:
            if self._info is not None:
                await self._zc.async_unregister_service(self._info)
            await self._zc.async_close()

    async def _async_watch_addresses(self) -> None:
        """Re-announce when the laptop's address changes (DHCP, cable moved to another switch)."""
        assert self._zc is not None and self._info is not None
        current = local_addresses(self.interface)
        while True:
            await asyncio.sleep(ADDRESS_CHECK_SECONDS)
            now = local_addresses(self.interface)
            if now != current:
                logger.info("Address changed from %s to %s: re-announcing", current, now)
                current = now
                new_info = self._service_info(now)
                new_info.name = self._info.name  # keep the name a conflict may have changed
                self._info = new_info
                await self._zc.async_update_service(self._info)
