"""Where a court can be reached: from mDNS or from the configuration."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Endpoint"]

_NODE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a court's sockets are. mDNS also tells its node id, name and CURVE public key; a
    configured address tells the node id when written ``NODE@HOST:...`` (needed under CURVE)."""

    host: str
    pub_port: int
    router_port: int
    node_id: str | None = None
    source: str = "config"
    court: str | None = None
    public_key: str | None = None

    @property
    def key(self) -> str:
        return f"{self.host}:{self.pub_port}:{self.router_port}"

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """``[NODE@]HOST:PUB_PORT:ROUTER_PORT`` (or ``[NODE@]HOST:PUB_PORT``, ROUTER = PUB + 1)."""
        node_id, at, address = text.strip().rpartition("@")
        if at and not _NODE_ID.match(node_id):
            raise ValueError(f"endpoint {text!r}: {node_id!r} is not a node id (1-64 of A-Z a-z 0-9 _ . -)")
        parts = address.rsplit(":", 2)
        try:
            if len(parts) == 3:
                return cls(parts[0], int(parts[1]), int(parts[2]), node_id=node_id or None)
            if len(parts) == 2:
                return cls(parts[0], int(parts[1]), int(parts[1]) + 1, node_id=node_id or None)
        except ValueError:
            pass
        raise ValueError(f"endpoint {text!r} is not [NODE@]HOST:PUB_PORT[:ROUTER_PORT]")
