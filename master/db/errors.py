"""Typed failures of the central store, so the subscriber knows whether to retry."""

from __future__ import annotations

__all__ = ["CentralStoreError", "CentralStoreUnavailable"]


class CentralStoreError(Exception):
    """The central database refused an operation; retrying the same call will fail again."""


class CentralStoreUnavailable(CentralStoreError):
    """The database is unreachable or the connection dropped; keep the batch and retry later.

    Every write is idempotent, so retrying a batch that may have been stored is safe.
    """
