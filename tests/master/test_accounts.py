"""Console users: argon2 hashes, expiring sessions, guessing slowed per user and per address."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import threading
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from master.accounts import AccountError, Accounts, AccountStore, SignInRefused, Throttle
from master.db._engine import create_central_engine
from master.db.migrate import upgrade
from master.db.models import ConsoleSession, ConsoleUser

#: Cheap parameters: these tests check behaviour, not the cost of argon2.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def accounts_store(central_url: str) -> Iterator[AccountStore]:
    upgrade(central_url)
    store = AccountStore(central_url, hasher=FAST_HASHER)
    try:
        yield store
    finally:
        store.close()


class Clock:
    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += dt.timedelta(seconds=seconds)


def test_users_are_added_changed_and_removed(accounts_store: AccountStore, central_url: str) -> None:
    accounts_store.add_user("director", "first password")
    accounts_store.add_user("assistant", "other password")
    assert accounts_store.list_users() == ["assistant", "director"]
    assert accounts_store.check_password("director", "first password")
    assert not accounts_store.check_password("director", "First password")
    assert not accounts_store.check_password("nobody", "first password")

    accounts_store.set_password("director", "second password")
    assert not accounts_store.check_password("director", "first password")
    assert accounts_store.check_password("director", "second password")

    accounts_store.remove_user("assistant")
    assert accounts_store.list_users() == ["director"]
    assert not accounts_store.check_password("assistant", "other password")

    engine = create_central_engine(central_url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(select(ConsoleUser.password_hash)).scalar_one()
    finally:
        engine.dispose()
    assert stored.startswith("$argon2id$") and "second password" not in stored


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("director", "short", "at least 8 characters"),
        ("", "long enough", "refused"),
        ("has space", "long enough", "refused"),
        ("x" * 65, "long enough", "refused"),
    ],
)
def test_bad_users_are_refused_with_a_reason(accounts_store: AccountStore, username: str, password: str, message: str) -> None:
    with pytest.raises(AccountError, match=message):
        accounts_store.add_user(username, password)
    assert accounts_store.list_users() == []


def test_duplicate_and_unknown_users_are_refused(accounts_store: AccountStore) -> None:
    accounts_store.add_user("director", "long enough")
    with pytest.raises(AccountError, match="exists already"):
        accounts_store.add_user("director", "long enough")
    with pytest.raises(AccountError, match="no user 'ghost'"):
        accounts_store.set_password("ghost", "long enough")
    with pytest.raises(AccountError, match="no user 'ghost'"):
        accounts_store.remove_user("ghost")


def test_sessions_expire_end_and_die_with_a_new_password(accounts_store: AccountStore, central_url: str) -> None:
    clock = Clock()
    accounts_store.add_user("director", "long enough")
    accounts = Accounts(accounts_store, session_seconds=3600, now=lambda: clock.wall)

    async def scenario() -> None:
        first = await accounts.async_sign_in("director", "long enough", "10.0.0.5")
        assert (await accounts.async_principal(first.token)).username == "director"  # type: ignore[union-attr]
        assert await accounts.async_principal("forged-token") is None
        assert await accounts.async_principal(None) is None

        clock.advance(3601)  # past the end, even while the look-up is cached
        assert await accounts.async_principal(first.token) is None

        second = await accounts.async_sign_in("director", "long enough", "10.0.0.5")
        await accounts.async_sign_out(second.token)
        assert await accounts.async_principal(second.token) is None

        third = await accounts.async_sign_in("director", "long enough", "10.0.0.5")
        await asyncio.to_thread(accounts_store.set_password, "director", "brand new pw")
        assert accounts_store.find_session(third.token, clock.wall) is None

    asyncio.run(scenario())
    engine = create_central_engine(central_url)
    try:
        with engine.connect() as connection:
            hashes = list(connection.execute(select(ConsoleSession.token_hash)).scalars())
    finally:
        engine.dispose()
    assert hashes == []  # ended, expired (pruned at the next sign-in) or revoked: nothing left


def test_wrong_passwords_are_slowed_per_user_and_per_address(accounts_store: AccountStore) -> None:
    clock = Clock()
    accounts_store.add_user("director", "long enough")
    throttle = Throttle(free_failures=3, base_delay=1.0, max_delay=8.0, clock=lambda: clock.mono)
    accounts = Accounts(accounts_store, session_seconds=3600, throttle=throttle, now=lambda: clock.wall)

    async def attempt(username: str, password: str, address: str) -> str:
        try:
            await accounts.async_sign_in(username, password, address)
        except SignInRefused as refused:
            return "wait" if refused.retry_after else "wrong"
        return "ok"

    async def scenario() -> None:
        # Three free failures, then the user is locked out, whatever address the guesses come from.
        assert [await attempt("director", "guess", f"10.0.0.{i}") for i in range(3)] == ["wrong"] * 3
        assert await attempt("director", "guess", "10.0.0.9") == "wait"
        assert await attempt("director", "long enough", "10.0.0.9") == "wait"  # even the right one, until the delay ends
        clock.advance(1.01)
        assert await attempt("director", "guess", "10.0.0.9") == "wrong"  # 4th failure: 2 s now
        clock.advance(1.5)
        assert await attempt("director", "long enough", "10.0.0.9") == "wait"
        clock.advance(0.6)
        assert await attempt("director", "long enough", "10.0.0.9") == "ok"  # success clears the count
        assert await attempt("director", "guess", "10.0.0.9") == "wrong"

        # One address guessing many user names is slowed too.
        assert [await attempt(f"user{i}", "guess", "10.9.9.9") for i in range(3)] == ["wrong"] * 3
        assert await attempt("someone-else", "guess", "10.9.9.9") == "wait"

    asyncio.run(scenario())


def test_throttle_doubles_caps_forgets_and_is_bounded() -> None:
    now = [0.0]
    throttle = Throttle(free_failures=2, base_delay=1.0, max_delay=4.0, forget_after=60.0, max_keys=3, clock=lambda: now[0])
    assert [throttle.delay_after(n) for n in range(1, 7)] == [0.0, 1.0, 2.0, 4.0, 4.0, 4.0]

    assert throttle.acquire(["user:a"]) == 0
    assert throttle.acquire(["user:a"]) > 0  # one attempt at a time per key
    throttle.release(["user:a"], success=False)
    assert throttle.acquire(["user:a"]) == 0
    throttle.release(["user:a"], success=False)
    assert throttle.acquire(["user:a"]) == pytest.approx(1.0)
    now[0] += 61  # forgotten after a quiet minute
    assert throttle.acquire(["user:a"]) == 0
    throttle.release(["user:a"], success=True)

    for key in ("k1", "k2", "k3", "k4"):
        assert throttle.acquire([key]) == 0
        throttle.release([key], success=False)
    assert len(throttle._records) == 3


def test_passwords_are_checked_at_the_lowest_cpu_priority(accounts_store: AccountStore) -> None:
    """argon2 takes every core for a moment: it must yield them to the courts' scores."""
    accounts_store.add_user("director", "long enough")
    seen: list[tuple[int, int]] = []
    check = accounts_store.check_password

    def observed(username: str, password: str) -> bool:
        seen.append((threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        return check(username, password)

    accounts_store.check_password = observed  # type: ignore[method-assign]
    accounts = Accounts(accounts_store, session_seconds=3600)
    asyncio.run(accounts.async_sign_in("director", "long enough", "10.0.0.5"))
    assert len(seen) == 1 and seen[0][0] != threading.get_native_id()
    assert seen[0][1] == 19
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < 19  # only that thread


def test_a_password_check_that_fails_reaches_the_sign_in(accounts_store: AccountStore) -> None:
    def broken(username: str, password: str) -> bool:
        raise ConnectionError("database gone")

    accounts_store.check_password = broken  # type: ignore[method-assign]
    with pytest.raises(ConnectionError, match="database gone"):
        asyncio.run(Accounts(accounts_store, session_seconds=3600).async_sign_in("director", "x", "10.0.0.5"))
