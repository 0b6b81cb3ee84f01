"""Keys for a venue on one machine (the demo, tests, benchmarks): generate, exchange, approve.

A real venue does the same by hand: `restrike keys init` on each machine, `restrike keys
add-master` on each court, `restrike master approve` on the master.
"""

from __future__ import annotations

import getpass
from pathlib import Path

from master.db.migrate import upgrade
from master.db.store import CentralStore
from master.gate import MASTER_KEY_NAME
from runtime.curve import KeyPair, new_key_pair
from runtime.keyfiles import key_pair_paths, load_key_pair, write_key_pair, write_public_key
from slave_agent.security import COURT_KEY_NAME, MASTERS_FOLDER

__all__ = ["ensure_key_pair", "exchange_keys", "set_up_venue"]


def ensure_key_pair(folder: Path, name: str) -> KeyPair:
    """The pair ``name`` in ``folder``, made first if missing."""
    if not key_pair_paths(folder, name)[1].exists():
        write_key_pair(folder, name, new_key_pair())
    return load_key_pair(folder, name, hint="")


def exchange_keys(master_keys: Path, courts: dict[str, Path]) -> tuple[KeyPair, dict[str, KeyPair]]:
    """A master pair and a pair per court (node id -> key folder), every court trusting the master."""
    master = ensure_key_pair(master_keys, MASTER_KEY_NAME)
    pairs = {}
    for node_id, folder in courts.items():
        pairs[node_id] = ensure_key_pair(folder, COURT_KEY_NAME)
        write_public_key(folder / MASTERS_FOLDER, MASTER_KEY_NAME, master.public)
    return master, pairs


def set_up_venue(master_keys: Path, courts: dict[str, Path], url: str) -> KeyPair:
    """:func:`exchange_keys`, and every court approved in the central database at ``url`` (migrated
    first). Safe to repeat. Returns the master's pair."""
    master, pairs = exchange_keys(master_keys, courts)
    upgrade(url)
    with CentralStore(url) as store:
        for node_id, pair in pairs.items():
            store.approve_court(node_id, pair.public, by=getpass.getuser(), replace=True)
    return master
