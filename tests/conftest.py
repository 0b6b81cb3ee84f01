"""Fixtures shared by every test: real loopback resources, closed in ``finally``."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from restrike.headless_obs import HeadlessObs
from restrike.ports import FIRST_PORT, LAST_PORT, RANGE_VARIABLE
from slave_agent.db.store import EventStore
from tests.obs_peers import running_obs


@pytest.fixture(autouse=True, scope="session")
def _agents_without_operator_page() -> Iterator[None]:
    """Agents started by tests serve no operator page unless their config says so: NiceGUI costs each
    a second of CPU, and they would all ask for port 8090. (Environment < config file, so a test's
    ``[operator] enabled = true`` wins.)"""
    previous = os.environ.get("RESTRIKE_SLAVE_OPERATOR__ENABLED")
    os.environ["RESTRIKE_SLAVE_OPERATOR__ENABLED"] = "false"
    yield
    if previous is None:
        os.environ.pop("RESTRIKE_SLAVE_OPERATOR__ENABLED", None)
    else:
        os.environ["RESTRIKE_SLAVE_OPERATOR__ENABLED"] = previous


@pytest.fixture(autouse=True, scope="session")
def _ports_of_this_worker() -> Iterator[None]:
    """Each xdist worker (and what it starts) takes free ports from a part of the range of its own: a
    court killed and started again on its port must not find it given to another worker's agent."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    previous = os.environ.get(RANGE_VARIABLE)
    if worker.startswith("gw") and count > 1:
        size = (LAST_PORT - FIRST_PORT + 1) // count
        low = FIRST_PORT + int(worker[2:]) * size
        os.environ[RANGE_VARIABLE] = f"{low}-{low + size - 1}"
    yield
    if previous is None:
        os.environ.pop(RANGE_VARIABLE, None)
    else:
        os.environ[RANGE_VARIABLE] = previous


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under ``--dist loadgroup`` a module's tests stay in one worker (its module fixtures are built
    once), and every test that runs a real OBS shares one worker: two OBS encoding at once on a
    2-core machine starve each other's replay buffers."""
    for item in items:
        module = getattr(item, "module", None)
        names = vars(module) if module is not None else {}
        if "obs_pair" in getattr(item, "fixturenames", ()) or "running_obs" in names or "HeadlessObs" in names:
            item.add_marker(pytest.mark.obs)
        group = "real-obs" if item.get_closest_marker("obs") else item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    s = EventStore(tmp_path / "slave", node_id="court-test")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def obs_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HeadlessObs, HeadlessObs]]:
    """Two real headless OBS (REC, STR), shared by the tests of one module to keep the suite fast."""
    root = tmp_path_factory.mktemp("obs")
    with running_obs(root) as rec, running_obs(root) as streamer:
        yield rec, streamer


class _ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def _no_leaked_threads_or_unexpected_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test ends with the threads it found, and logs no ERROR it did not announce.

    A test that provokes errors on purpose says so with ``@pytest.mark.expect_error_logs`` (and
    should assert on them with ``caplog``). Threads get two seconds to wind down after the test.
    """
    before = set(threading.enumerate())
    handler = _ErrorRecords()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
    deadline = time.monotonic() + 2.0
    while (leaked := [t for t in threading.enumerate() if t not in before and t.is_alive()]) and time.monotonic() < deadline:
        time.sleep(0.02)
    problems = []
    if leaked:
        problems.append(f"threads left running: {', '.join(sorted(t.name for t in leaked))}")
    if handler.records and request.node.get_closest_marker("expect_error_logs") is None:
        shown = "; ".join(f"{r.name}: {r.getMessage()}" for r in handler.records[:5])
        problems.append(f"{len(handler.records)} unexpected ERROR log record(s): {shown}")
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)
