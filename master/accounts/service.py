"""Sign-in, sign-out and "who is this cookie?" for the console, on the event loop.

Database work runs in a thread, argon2 in a thread of its own at the lowest CPU priority.
Session look-ups are cached for a few seconds, so every page load does not cost a query; a
session ended elsewhere (sign-out in this process, or ``restrike master user passwd/remove``
from a shell) stops working within that time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from master.accounts.store import AccountStore, Principal
from master.accounts.throttle import Throttle

__all__ = ["Accounts", "SignInRefused", "SignInResult"]

logger = logging.getLogger(__name__)

_CACHE_SECONDS = 5.0
_CACHE_SIZE = 1000


def _lowest_priority() -> None:
    """For the password-check thread (and argon2's lane threads, which inherit it): nice 19.

    argon2 is slow on purpose; with its four lanes it takes every core of a small master for a
    moment. A director signing in must not delay the courts' scores on their way to the overlay.
    """
    with contextlib.suppress(OSError, AttributeError):  # Linux sets it per thread; elsewhere: as it is
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


_T = TypeVar("_T")


async def _async_at_lowest_priority(func: Callable[..., _T], *args: object) -> _T:
    """``func(*args)`` in a thread of its own at nice 19, which ends with it (sign-ins are rare)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[_T] = loop.create_future()

    def settle(result: _T | None, error: BaseException | None) -> None:
        if done.done():  # the sign-in was given up meanwhile
            return
        if error is not None:
            done.set_exception(error)  # the awaiting task raises it
        else:
            done.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        _lowest_priority()
        try:
            result = func(*args)
        except BaseException as exc:
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=run, name="password-check", daemon=True).start()
    return await done


class SignInRefused(Exception):
    """A failed sign-in; ``retry_after`` > 0 when it was refused for too many failures."""

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class SignInResult:
    token: str
    principal: Principal


class Accounts:
    """The console's view of users: async, throttled, cached."""

    def __init__(
        self,
        store: AccountStore,
        *,
        session_seconds: float,
        throttle: Throttle | None = None,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.store = store
        self.session_seconds = session_seconds
        self.throttle = throttle or Throttle()
        self._now = now
        self._cache: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()

    async def async_sign_in(self, username: str, password: str, address: str | None) -> SignInResult:
        """A new session for the user, or :class:`SignInRefused` (wrong password, or too many failures)."""
        keys = [f"user:{username.lower()}", f"addr:{address or '?'}"]
        wait = self.throttle.acquire(keys)
        if wait > 0:
            logger.warning("Sign-in as %r from %s refused: too many failed attempts (retry in %.0f s)", username, address, wait)
            raise SignInRefused(f"Too many failed attempts: try again in {max(1, round(wait))} s.", retry_after=wait)
        ok = False
        try:
            ok = await _async_at_lowest_priority(self.store.check_password, username, password)
        finally:
            self.throttle.release(keys, success=ok)
        if not ok:
            logger.warning("Failed sign-in as %r from %s", username, address)
            raise SignInRefused("Wrong user name or password.")
        token = secrets.token_urlsafe(32)
        now = self._now()
        principal = Principal(username, now + dt.timedelta(seconds=self.session_seconds))
        await asyncio.to_thread(self.store.create_session, username, token, now, principal.expires_at, address)
        logger.info("%s signed in from %s", username, address)
        return SignInResult(token, principal)

    async def async_principal(self, token: str | None) -> Principal | None:
        """Whose session this token is, or ``None`` (unknown, ended or expired)."""
        if not token:
            return None
        cached = self._cache.get(token)
        if cached is not None and time.monotonic() - cached[0] < _CACHE_SECONDS:
            principal = cached[1]
        else:
            principal = await asyncio.to_thread(self.store.find_session, token, self._now())
            self._cache[token] = (time.monotonic(), principal)
            self._cache.move_to_end(token)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        if principal is not None and principal.expires_at <= self._now():
            return None
        return principal

    async def async_sign_out(self, token: str | None) -> None:
        if not token:
            return
        self._cache.pop(token, None)
        await asyncio.to_thread(self.store.end_session, token)

    def close(self) -> None:
        self.store.close()
