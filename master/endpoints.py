"""Where a court can be reached: from mDNS or from the configuration."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Endpoint"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a court's sockets are; ``node_id`` is known from mDNS, learnt from heartbeats otherwise."""

    host: str
    pub_port: int
    router_port: int
    node_id: str | None = None
    source: str = "config"

    @property
    def key(self) -> str:
        return f"{self.host}:{self.pub_port}:{self.router_port}"

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """``HOST:PUB_PORT:ROUTER_PORT`` (or ``HOST:PUB_PORT``, ROUTER = PUB + 1)."""
        parts = text.strip().rsplit(":", 2)
        try:
            if len(parts) == 3:
                return cls(parts[0], int(parts[1]), int(parts[2]))
            if len(parts) == 2:
                return cls(parts[0], int(parts[1]), int(parts[1]) + 1)
        except ValueError:
            pass
        raise ValueError(f"endpoint {text!r} is not HOST:PUB_PORT[:ROUTER_PORT]")
