"""Users and sessions in the central database (synchronous; the service calls it from a thread).

Only argon2 hashes of passwords and SHA-256 digests of session tokens are stored: a copy of
the database lets nobody sign in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from master.db._engine import create_central_engine
from master.db.tables import CONSOLE_SESSIONS, CONSOLE_USERS

__all__ = ["MIN_PASSWORD_LENGTH", "AccountError", "AccountStore", "Principal", "token_digest"]

MIN_PASSWORD_LENGTH = 8
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class AccountError(ValueError):
    """A user-management request that cannot be done, with a message fit for the operator."""


@dataclass(frozen=True)
class Principal:
    """Who a valid session belongs to, and until when."""

    username: str
    expires_at: dt.datetime


def token_digest(token: str) -> str:
    """What the database keeps of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


class AccountStore:
    """Create, change and remove users; create, find and end sessions."""

    def __init__(self, url: str, hasher: PasswordHasher | None = None) -> None:
        self._engine: Engine = create_central_engine(url)
        self._hasher = hasher or PasswordHasher()
        # Checked against when the user does not exist, so both cases cost the same time.
        self._dummy_hash = self._hasher.hash("not a password of anyone")

    def close(self) -> None:
        self._engine.dispose()

    # -- users -----------------------------------------------------------------------------

    def add_user(self, username: str, password: str) -> None:
        _check_username(username)
        digest = self._hash(password)
        with self._engine.begin() as connection:
            if connection.execute(select(CONSOLE_USERS.c.id).where(CONSOLE_USERS.c.username == username)).first() is not None:
                raise AccountError(f"user {username!r} exists already (use `restrike master user passwd {username}`)")
            connection.execute(insert(CONSOLE_USERS).values(username=username, password_hash=digest))

    def set_password(self, username: str, password: str) -> None:
        """A new password ends every session of the user."""
        digest = self._hash(password)
        with self._engine.begin() as connection:
            user_id = self._user_id(connection, username)
            connection.execute(
                update(CONSOLE_USERS).where(CONSOLE_USERS.c.id == user_id).values(password_hash=digest, password_changed_at=func.now())
            )
            connection.execute(delete(CONSOLE_SESSIONS).where(CONSOLE_SESSIONS.c.user_id == user_id))

    def remove_user(self, username: str) -> None:
        with self._engine.begin() as connection:
            user_id = self._user_id(connection, username)
            connection.execute(delete(CONSOLE_SESSIONS).where(CONSOLE_SESSIONS.c.user_id == user_id))
            connection.execute(delete(CONSOLE_USERS).where(CONSOLE_USERS.c.id == user_id))

    def list_users(self) -> list[str]:
        with self._engine.connect() as connection:
            return list(connection.execute(select(CONSOLE_USERS.c.username).order_by(CONSOLE_USERS.c.username)).scalars())

    def check_password(self, username: str, password: str) -> bool:
        """True when the password is the user's; costs one argon2 verification either way."""
        with self._engine.connect() as connection:
            stored = connection.execute(select(CONSOLE_USERS.c.password_hash).where(CONSOLE_USERS.c.username == username)).scalar()
        try:
            return self._hasher.verify(stored or self._dummy_hash, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    # -- sessions --------------------------------------------------------------------------

    def create_session(self, username: str, token: str, now: dt.datetime, expires_at: dt.datetime, address: str | None) -> None:
        with self._engine.begin() as connection:
            user_id = self._user_id(connection, username)
            connection.execute(delete(CONSOLE_SESSIONS).where(CONSOLE_SESSIONS.c.expires_at <= now))  # forget the expired ones
            connection.execute(
                insert(CONSOLE_SESSIONS).values(
                    token_hash=token_digest(token), user_id=user_id, created_at=now, expires_at=expires_at,
                    address=(address or "")[:64] or None,
                )
            )

    def find_session(self, token: str, now: dt.datetime) -> Principal | None:
        query = (
            select(CONSOLE_USERS.c.username, CONSOLE_SESSIONS.c.expires_at)
            .join(CONSOLE_USERS, CONSOLE_USERS.c.id == CONSOLE_SESSIONS.c.user_id)
            .where(CONSOLE_SESSIONS.c.token_hash == token_digest(token))
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        expires_at = _aware(row.expires_at)
        return Principal(row.username, expires_at) if expires_at > now else None

    def end_session(self, token: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(delete(CONSOLE_SESSIONS).where(CONSOLE_SESSIONS.c.token_hash == token_digest(token)))

    # -- helpers ---------------------------------------------------------------------------

    def _hash(self, password: str) -> str:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
        return self._hasher.hash(password)

    def _user_id(self, connection: Connection, username: str) -> int:
        row = connection.execute(select(CONSOLE_USERS.c.id).where(CONSOLE_USERS.c.username == username)).first()
        if row is None:
            raise AccountError(f"no user {username!r} (see `restrike master user list`)")
        return int(row.id)


def _check_username(username: str) -> None:
    if not _USERNAME.match(username):
        raise AccountError(
            f"user name {username!r} refused: 1-64 letters, digits and . _ @ -, starting with a letter or digit"
        )


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite gives naive datetimes back; they were stored as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
