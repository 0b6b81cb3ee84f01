"""Every court's state, from the running master's memory or from the central database.

Two sources, one shape (:class:`CourtView`):

* :func:`live_courts` reads the links and the live matches of the master running in this
  process (the console runs there): no I/O, safe to call on the event loop at any rate, and
  right even while the database is down.
* :func:`stored_courts` reads what the master wrote to the database (node rows, stored
  seqs, event counts): what a CLI in another process sees. A master writes a court's row at
  most every 2 s, so this view can be that much older.

:func:`merge_courts` puts the two together for a reader in the master's process that also
wants the courts no link has reached since it started.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, computed_field

from master.db.repository import CentralRepository, NodeRow
from master.links import SlaveLink
from master.live import LiveMatches
from runtime.curve import fingerprint
from shared.match_snapshot import MatchSnapshot
from shared.wire import Health, Heartbeat, ObsStatus

__all__ = ["CourtView", "live_courts", "merge_courts", "stored_courts"]


class CourtView(BaseModel):
    """One court as the director's console and `restrike master status` show it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node_id: str
    court: str | None
    status: Literal["online", "offline", "pending", "revoked"]
    """pending: found, waiting for the director's approval; revoked: approval withdrawn (CURVE only)."""
    last_seen: dt.datetime | None
    """When the court's last heartbeat was sent (the court's clock)."""
    epoch: str | None
    published_seq: int
    """The court's last published event, as its last heartbeat states it."""
    stored_seq: int
    """Every event of the epoch up to this one is in the central database."""
    events: int | None
    """Events of this court in the central database (all epochs); None when read from memory."""
    health: Health | None
    obs: ObsStatus | None
    match: MatchSnapshot | None
    hostname: str | None = None
    version: str | None = None
    address: str | None = None
    source: Literal["live", "database"]
    held: int | None = None
    """Events and row changes of the court in the master's memory, waiting for the database (live view only)."""
    not_held: int | None = None
    """Live events left in the court's database because the master held its limit, fetched from there
    later (since the master started; live view only)."""
    as_of: dt.datetime | None
    """When this was the master's view: now for the live view, when the master wrote the row for the
    database view (a row much older than the court's heartbeat interval: the master is not writing)."""
    key: str | None = None
    """Fingerprint of the court's approved CURVE key (None: not approved, or CURVE off)."""
    offered_key: str | None = None
    """Fingerprint of a key the court presented that is not the approved one: waiting for approval
    when pending, refused (an impostor or a replaced laptop) when approved."""
    offered_from: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def refused_key(self) -> str | None:
        """Another key presented under this approved node id: refused, and to be looked into."""
        return self.offered_key if self.key is not None else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def lag(self) -> int:
        """Events the court has published that the master has not stored yet."""
        return max(0, self.published_seq - self.stored_seq)


def live_courts(links: Iterable[SlaveLink], matches: LiveMatches) -> list[CourtView]:
    """The courts linked in this process, from memory; a court reached by two links (moving) once."""
    views: dict[str, CourtView] = {}
    for link in links:
        hb = link.last_heartbeat
        if hb is None or link.node_id is None:
            continue  # never heard: nothing to show yet
        live = matches.get(hb.node_id)
        view = _from_heartbeat(hb, link, live.snapshot() if live else None)
        if hb.node_id not in views or view.status == "online":
            views[hb.node_id] = view
    return [views[node_id] for node_id in sorted(views)]


def stored_courts(repository: CentralRepository) -> list[CourtView]:
    """Every court the master has written to the database, by node id."""
    nodes = repository.nodes()
    stored = repository.stored_seqs([(n.node_id, n.epoch) for n in nodes if n.epoch])
    counts = repository.event_counts()
    return [_from_row(n, stored.get((n.node_id, n.epoch or ""), 0), counts.get(n.node_id, 0)) for n in nodes]


def merge_courts(stored: Iterable[CourtView], live: Iterable[CourtView]) -> list[CourtView]:
    """The live view of each linked court, the stored view of the others, by node id."""
    merged = {view.node_id: view for view in stored}
    merged.update((view.node_id, view) for view in live)
    return [merged[node_id] for node_id in sorted(merged)]


def _from_heartbeat(hb: Heartbeat, link: SlaveLink, match: MatchSnapshot | None) -> CourtView:
    return CourtView(
        node_id=hb.node_id,
        court=hb.court,
        status="online" if link.online else "offline",
        last_seen=dt.datetime.fromtimestamp(hb.sent_ms / 1000, dt.UTC),
        epoch=hb.epoch,
        published_seq=hb.last_seq,
        stored_seq=link.cursor.known.get(hb.epoch, 0),
        events=None,
        health=hb.health,
        obs=hb.obs,
        match=match,
        hostname=hb.hostname,
        version=hb.version,
        address=link.endpoint.host,
        source="live",
        held=link.held,
        not_held=link.stats.shed,
        as_of=dt.datetime.now(dt.UTC),
        key=fingerprint(link.server_key) if link.server_key else None,
    )


def _from_row(node: NodeRow, stored_seq: int, events: int) -> CourtView:
    heard = node.last_seen is not None
    return CourtView(
        node_id=node.node_id,
        court=node.court_name,
        status=node.status if node.status in ("online", "pending", "revoked") else "offline",
        last_seen=node.last_seen,
        epoch=node.epoch,
        published_seq=node.last_heartbeat_seq or 0,
        stored_seq=stored_seq,
        events=events,
        health=Health(
            cpu_percent=node.cpu_percent or 0.0,
            memory_percent=node.memory_percent or 0.0,
            disk_free_bytes=node.disk_free_bytes or 0,
        ) if heard else None,
        obs=_stored_obs(node) if heard else None,
        match=_stored_match(node),
        hostname=node.hostname,
        version=node.version,
        address=node.address,
        source="database",
        as_of=node.heard_at,
        key=fingerprint(node.public_key) if node.approved and node.public_key else None,
        offered_key=fingerprint(node.offered_key) if node.offered_key else None,
        offered_from=node.offered_from,
    )


def _stored_obs(node: NodeRow) -> ObsStatus:
    """The full state when the row has it, else the columns every master version writes."""
    if node.obs is not None:
        try:
            return ObsStatus.model_validate(node.obs)
        except ValidationError:
            pass  # written by another version: the columns below still say the essentials
    return ObsStatus(
        rec_connected=node.obs_rec_connected,
        str_connected=node.obs_str_connected,
        recording=node.recording,
        streaming=node.streaming,
        replay_buffer=node.replay_buffer,
        current_scene=node.current_scene,
    )


def _stored_match(node: NodeRow) -> MatchSnapshot | None:
    if node.match is None:
        return None
    try:
        return MatchSnapshot.model_validate(node.match)
    except ValidationError:  # written by another version of the master: not shown rather than wrong
        return None
