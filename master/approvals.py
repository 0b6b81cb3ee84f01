"""Which courts the master may talk to: the director's approvals, and the verdict on a court's offered key.

A court is known by its node id and its CURVE public key (from its mDNS record, or given by
the director for a configured address). The master links only to a node whose key the
director pinned (`restrike master approve NODE`); any other key under that node id is
refused, and a node never approved is pending.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["CourtApproval", "Verdict", "judge"]


class Verdict(StrEnum):
    APPROVED = "approved"  # link, with the pinned key
    PENDING = "pending"  # never approved: wait for the director
    REFUSED = "refused"  # approved, but this offer presents another key
    REVOKED = "revoked"  # the director withdrew the approval


@dataclass(frozen=True, slots=True)
class CourtApproval:
    """A node's approval as stored in ``central_slave_nodes``."""

    node_id: str
    status: str
    approved: bool
    public_key: str | None = None
    court_name: str | None = None
    address: str | None = None
    approved_at: dt.datetime | None = None
    approved_by: str | None = None
    offered_key: str | None = None
    offered_at: dt.datetime | None = None
    offered_from: str | None = None

    @property
    def refused_key(self) -> str | None:
        """Another key presented under this approved node id (an impostor or a replaced laptop)."""
        return self.offered_key if self.approved and self.offered_key not in (None, self.public_key) else None


def judge(approval: CourtApproval | None, offered_key: str | None) -> Verdict:
    """What to do with a court offering ``offered_key`` (None: a configured address, key unknown)."""
    if approval is None or not approval.approved or approval.public_key is None:
        return Verdict.REVOKED if approval is not None and approval.status == "revoked" else Verdict.PENDING
    if offered_key is not None and offered_key != approval.public_key:
        return Verdict.REFUSED
    return Verdict.APPROVED
