"""Run a long-lived process on the event loop until SIGTERM or Ctrl-C, then shut it down cleanly."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["freeze_startup_objects", "log_task_failure", "serve_until_signalled", "spawn", "stop_on_signals"]

logger = logging.getLogger(__name__)


@contextmanager
def stop_on_signals() -> Iterator[asyncio.Event]:
    """While inside: the first SIGTERM/SIGINT sets the event it yields; a second one exits at once.

    The previous signal handlers are restored on leaving. Must be entered on the running loop.
    """
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()

    def _on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if stopped.is_set():
            logger.warning("Second %s: exiting now", name)
            raise SystemExit(130)
        logger.info("%s received: stopping (again to force)", name)
        stopped.set()

    previous: dict[int, object] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, _on_signal, signum)
        except NotImplementedError:  # Windows: no loop signal handlers, use the plain ones
            previous[signum] = signal.signal(signum, lambda s, _f: loop.call_soon_threadsafe(_on_signal, s))
    try:
        yield stopped
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signum in previous:
                signal.signal(signum, previous[signum])  # type: ignore[arg-type]
            else:
                loop.remove_signal_handler(signum)


async def serve_until_signalled(
    startup: Callable[[], Awaitable[None]], shutdown: Callable[[], Awaitable[None]]
) -> None:
    """``startup``, wait for SIGTERM/SIGINT, ``shutdown``; a second signal exits at once.

    ``shutdown`` runs even if ``startup`` failed half-way, so sockets and files are always released.
    """
    try:
        with stop_on_signals() as stopped:
            await startup()
            freeze_startup_objects()
            await stopped.wait()
    finally:
        await shutdown()


def freeze_startup_objects() -> None:
    """Take what start-up built (modules, settings, connections: some 180,000 objects on the master)
    out of the cyclic garbage collector's full passes, which scan every object they track.

    Unfrozen, each full pass held the master's event loop for 150-320 ms on a 2-vCPU machine, and
    the scores on their way to the overlay waited for it. Frozen objects are never collected, which
    is right for what lives as long as the process; so: once, after start-up.
    """
    gc.collect()
    gc.freeze()


def log_task_failure(log: logging.Logger) -> Callable[[asyncio.Task[Any]], None]:
    """A done-callback that logs, on the owner's logger, a background task that ended with an error."""

    def callback(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("Background task %s stopped with an error", task.get_name(), exc_info=task.exception())

    return callback


def spawn(tasks: set[asyncio.Task[Any]], coro: Coroutine[Any, Any, object], name: str, log: logging.Logger) -> None:
    """Start an owned background task: kept in ``tasks`` until it ends, its failure logged on ``log``."""
    task = asyncio.get_running_loop().create_task(coro, name=name)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    task.add_done_callback(log_task_failure(log))
