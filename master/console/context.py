"""What the pages are given: the long-lived services they read and act through."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from master.accounts import Accounts
from master.app import Master
from master.db.repository import CentralRepository
from master.services.courts import merge_courts, stored_courts

__all__ = ["ConsoleContext"]


@dataclass
class ConsoleContext:
    """Created once per process by the server (or a test); pages keep no state beyond their client."""

    accounts: Accounts
    master: Master
    repository: CentralRepository

    async def async_court_names(self) -> list[str]:
        """Every court the master knows (linked now or stored), by name: what the filters suggest."""
        stored = await asyncio.to_thread(stored_courts, self.repository)
        return sorted({view.court or view.node_id for view in merge_courts(stored, self.master.courts())})
