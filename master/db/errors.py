"""Typed failures of the central store, so the subscriber knows whether to retry; and an operator's
reading of a database that cannot be used at all (wrong URL, server down, no such database)."""

from __future__ import annotations

import re

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from runtime.errors import OperatorError

__all__ = ["CentralDatabaseUnusable", "CentralStoreError", "CentralStoreUnavailable", "masked_url", "unusable_database"]


class CentralStoreError(Exception):
    """The central database refused an operation; retrying the same call will fail again."""


class CentralStoreUnavailable(CentralStoreError):
    """The database is unreachable or the connection dropped; keep the batch and retry later.

    Every write is idempotent, so retrying a batch that may have been stored is safe.
    """


class CentralDatabaseUnusable(OperatorError):
    """The central database cannot be reached or opened; the message says why, its password masked.

    Exit status 1 when waiting may help (host not resolved yet, server starting), 2 when the
    setting itself is wrong (user, password, database name, driver).
    """

    heading = "Central database"


_PASSWORD = re.compile(r"(:)[^:/@]*@")


def masked_url(url: str) -> str:
    """The URL as it may be shown or logged: any password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # not a URL (ValueError: a port that is not a number)
        return _PASSWORD.sub(r"\1***@", url)


def _is_driver_of(exc: ImportError, url: str) -> bool:
    """The module missing is the URL's database driver (``asyncpg`` for ``postgresql+asyncpg://``)."""
    try:
        driver = make_url(url).get_driver_name()
    except (ArgumentError, ValueError, NoSuchModuleError):
        return False
    return (exc.name or "").partition(".")[0] == driver


def _parses(url: str) -> bool:
    try:
        make_url(url)
    except (ArgumentError, ValueError):
        return False
    return True


#: (text the driver reports, what an operator reads, exit status); first match wins.
_CAUSES: tuple[tuple[re.Pattern[str], str, int], ...] = (
    (re.compile(r"failed to resolve host '([^']*)'|could not translate host name \"([^\"]*)\""),
     "no such host '{0}' (check the host name)", 1),
    (re.compile(r'server at "([^"]*)", port (\d+) failed: Connection refused'),
     "connection refused by {0}:{1}: is PostgreSQL running there, on that port?", 1),
    (re.compile(r'server at "([^"]*)", port (\d+) failed: (?:timeout expired|Connection timed out)'),
     "no answer from {0}:{1} (wrong address, or a firewall in between)", 1),
    (re.compile(r'password authentication failed for user "([^"]*)"|role "([^"]*)" does not exist'),
     "authentication failed for user '{0}' (check the user name and password)", 2),
    (re.compile(r'no password supplied|pg_hba\.conf'),
     "authentication failed: the server wants a password, or does not accept this user from this address", 2),
    (re.compile(r'database "([^"]*)" does not exist'),
     "database '{0}' does not exist on the server (create it first, e.g. `createdb {0}`)", 2),
    (re.compile(r"unable to open database file"),
     "cannot open the SQLite file (does its folder exist, and may this user write there?)", 2),
)


def unusable_database(exc: BaseException, url: str) -> CentralDatabaseUnusable | None:
    """What ``exc`` (from opening or migrating the database at ``url``) means to an operator; ``None`` if
    it is not a problem of reaching or opening the database."""
    where = masked_url(url)
    # NoSuchModuleError is an ArgumentError: test it first. Another module missing is not the database's.
    if isinstance(exc, NoSuchModuleError) or (isinstance(exc, ImportError) and _is_driver_of(exc, url)):
        name = getattr(exc, "name", None) or str(exc).rsplit(":", 1)[-1].strip()
        return CentralDatabaseUnusable(
            f"{where}: the database driver {name} is not installed; use postgresql+psycopg://... (installed) or sqlite:///...", 2
        )
    if isinstance(exc, ArgumentError) or not _parses(url):
        return CentralDatabaseUnusable(
            f"{where!r} is not a database URL; expected e.g. postgresql+psycopg://user:password@host/restrike", 2
        )
    if isinstance(exc, ValueError) and "unsupported central database" in str(exc):
        return CentralDatabaseUnusable(f"{where}: {exc}", 2)
    if isinstance(exc, OperationalError):
        text = str(exc.orig)
        for pattern, message, code in _CAUSES:
            if found := pattern.search(text):
                values = [value for value in found.groups() if value is not None]
                return CentralDatabaseUnusable(f"{where}: {message.format(*values)}", code)
        return CentralDatabaseUnusable(f"{where}: {text.splitlines()[0]}", 1)
    return None
