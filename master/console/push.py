"""Push a change to an open page as it happens, a burst of changes as one update.

The master's live state tells its listeners at every change (80 a second with 8 courts at
10 events a second). A page that redrew at each one would spend the event loop, and the
websocket, on updates nobody can see. :class:`Coalesced` runs the page's update at the
first change at once (nothing waits when the venue is quiet), then at most once per
``interval`` (a display frame for the overlay), always with the latest state: whatever
changed in between is shown by that one update.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from runtime.logs import level_for_repeat

__all__ = ["FRAME_SECONDS", "Coalesced"]

logger = logging.getLogger(__name__)

#: One display frame at 60 Hz: the overlay never updates faster than a screen can show.
FRAME_SECONDS = 1 / 60


class Coalesced:
    """``poke()`` at every change; ``update`` runs soon after, at most once per ``interval``. On the loop only."""

    def __init__(self, update: Callable[[], None], interval: float = FRAME_SECONDS) -> None:
        self._update = update
        self.interval = interval
        self._last = float("-inf")
        self._handle: asyncio.TimerHandle | asyncio.Handle | None = None
        self._errors = 0
        self._closed = False

    def poke(self, *_: object) -> None:
        """A change: schedule the update unless one is already due (fits any listener's signature)."""
        if self._handle is not None or self._closed:
            return
        loop = asyncio.get_running_loop()
        delay = self._last + self.interval - loop.time()
        self._handle = loop.call_later(delay, self._run) if delay > 0 else loop.call_soon(self._run)

    def close(self) -> None:
        """The page is gone: drop a scheduled update and ignore later changes."""
        self._closed = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _run(self) -> None:
        self._handle = None
        self._last = asyncio.get_running_loop().time()
        try:
            self._update()
        except Exception:  # a page's bug must not end its updates, nor reach the loop's handler
            self._errors += 1
            logger.log(level_for_repeat(self._errors), "A page update failed (the next change retries)", exc_info=True)
