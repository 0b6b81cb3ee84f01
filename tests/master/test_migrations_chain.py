"""The central schema's migrations form one chain: one head, each revision once, numbered in order."""

from __future__ import annotations

import re
from pathlib import Path

import master

VERSIONS = Path(master.__file__).parent / "migrations" / "versions"


def _revisions() -> list[tuple[str, str, str | None]]:
    out = []
    for path in sorted(VERSIONS.glob("*.py")):
        text = path.read_text()
        revision = re.search(r'^revision: str = "([^"]+)"', text, re.M)
        down = re.search(r'^down_revision: str \| None = (None|"([^"]+)")', text, re.M)
        assert revision and down, f"{path.name} does not declare revision and down_revision"
        out.append((path.name, revision.group(1), down.group(2)))
    return out


def test_one_linear_chain_of_uniquely_numbered_revisions() -> None:
    revisions = _revisions()
    ids = [rev for _, rev, _ in revisions]
    assert len(ids) == len(set(ids)), f"a revision id is used twice: {sorted(ids)} (renumber the newer file)"
    for name, rev, _ in revisions:
        assert name.startswith(f"{rev}_"), f"{name} holds revision {rev}: the file name should start with it"
    downs = [down for _, _, down in revisions]
    assert downs == [None, *ids[:-1]], "each revision must follow the one before it (one head, no branches)"
