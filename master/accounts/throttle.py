"""Slow down password guessing, per user name and per address (pure logic, injectable clock).

After ``free_failures`` failed attempts a key (``user:NAME`` or ``addr:IP``) must wait before
its next attempt, twice as long after every further failure, up to ``max_delay``. One attempt
at a time per key, so parallel guesses cannot slip through before the first failure counts.
A key forgets its failures ``forget_after`` seconds after the last one; the table is bounded.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Throttle"]


@dataclass
class _Record:
    failures: int = 0
    last_failure: float = 0.0
    next_allowed: float = 0.0
    busy: bool = False


class Throttle:
    """Failed-attempt book-keeping; :meth:`acquire` before checking a password, :meth:`release` after."""

    def __init__(
        self,
        *,
        free_failures: int = 3,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        forget_after: float = 900.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free_failures = free_failures
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.max_keys = max_keys
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def acquire(self, keys: Sequence[str]) -> float:
        """0 and the keys marked busy when an attempt may go ahead, else the seconds to wait."""
        now = self._clock()
        wait = 0.0
        for key in keys:
            record = self._record(key, now)
            if record is None:
                continue
            if record.busy:
                wait = max(wait, self.base_delay)
            wait = max(wait, record.next_allowed - now)
        if wait > 0:
            return wait
        for key in keys:
            self._touch(key).busy = True
        return 0.0

    def release(self, keys: Sequence[str], *, success: bool) -> None:
        """End an attempt: a success clears the keys' failures, a failure counts against each."""
        now = self._clock()
        for key in keys:
            if success:
                self._records.pop(key, None)
                continue
            record = self._touch(key)
            record.busy = False
            record.failures += 1
            record.last_failure = now
            record.next_allowed = now + self.delay_after(record.failures)

    def delay_after(self, failures: int) -> float:
        """Seconds a key waits after its ``failures``-th failure in a row."""
        if failures < self.free_failures:
            return 0.0
        return float(min(self.max_delay, self.base_delay * 2 ** (failures - self.free_failures)))

    def _record(self, key: str, now: float) -> _Record | None:
        record = self._records.get(key)
        if record is not None and not record.busy and record.failures and now - record.last_failure > self.forget_after:
            del self._records[key]
            return None
        return record

    def _touch(self, key: str) -> _Record:
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = _Record()
            while len(self._records) > self.max_keys:
                self._records.popitem(last=False)  # the least recently used key forgets first
        else:
            self._records.move_to_end(key)
        return record
