"""mDNS browsing for courts: where each slave is. Whether it is alive is the heartbeats' business."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from master.endpoints import Endpoint
from runtime.curve import check_public_key
from shared.wire import SERVICE_TYPE

__all__ = ["Browser"]

logger = logging.getLogger(__name__)


class Browser:
    """Calls ``found(endpoint)`` for each court announced or re-announced on the network."""

    def __init__(self, found: Callable[[Endpoint], None], interface: str | None = None):
        self.found = found
        self.interface = interface
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def async_start(self) -> None:
        kwargs = {"interfaces": [self.interface]} if self.interface else {}
        self._zc = AsyncZeroconf(ip_version=IPVersion.V4Only, **kwargs)  # type: ignore[arg-type]
        self._browser = AsyncServiceBrowser(self._zc.zeroconf, [SERVICE_TYPE], handlers=[self._on_change])
        logger.info("Browsing mDNS for %s", SERVICE_TYPE)

    async def async_stop(self) -> None:
        for task in self._pending:
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._zc is not None:
            await self._zc.async_close()

    def _on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
            task = asyncio.get_running_loop().create_task(self._async_resolve(service_type, name))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        elif state_change is ServiceStateChange.Removed:
            logger.info("mDNS: %s withdrew its announcement", name)

    async def _async_resolve(self, service_type: str, name: str) -> None:
        assert self._zc is not None
        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(self._zc.zeroconf, 3000):
            logger.warning("mDNS: could not resolve %s", name)
            return
        props = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
        addresses = [socket.inet_ntoa(a) for a in info.addresses_by_version(IPVersion.V4Only)]
        try:
            endpoint = Endpoint(
                host=addresses[0],
                pub_port=int(props["pub_port"]),
                router_port=int(props["router_port"]),
                node_id=props["node_id"],
                source="mdns",
                court=props.get("court"),
                public_key=check_public_key(props["public_key"]) if props.get("public_key") else None,
            )
        except (KeyError, ValueError, IndexError):  # BadKey is a ValueError
            logger.warning("mDNS: %s announces incomplete or invalid properties %s", name, props)
            return
        self.found(endpoint)
