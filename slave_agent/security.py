"""The court's side of CURVE: its key pair, and the masters it answers.

Both ZeroMQ sockets of the court (PUB, ROUTER) are CURVE servers. Every connecting peer is
checked by ZAP (pyzmq's asyncio authenticator): only a master whose public key the court
holds (``[security] master_keys`` or a file in ``<keys_dir>/masters/``) gets through; any
other peer is refused before it can read an event, ask for a page or send a command.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.asyncio
from zmq.auth.asyncio import AsyncioAuthenticator

from runtime.curve import ZAP_DOMAIN, KeyPair, fingerprint, secure_server
from runtime.keyfiles import KeyFileError, load_key_pair, load_public_keys
from runtime.logs import level_for_repeat

__all__ = ["COURT_KEY_NAME", "MASTERS_FOLDER", "CourtGuard", "GuardStats"]

logger = logging.getLogger(__name__)

COURT_KEY_NAME = "court"
MASTERS_FOLDER = "masters"
#: An unknown key makes the guard look at the masters folder again, at most this often,
#: so `restrike keys add-master` takes effect without a restart.
RESCAN_SECONDS = 2.0


@dataclass(slots=True)
class GuardStats:
    accepted: int = 0
    refused: int = 0


class CourtGuard:
    """Holds the court's key pair and decides, per connection, whether the peer is one of its masters."""

    def __init__(self, pair: KeyPair, keys_dir: Path, configured_masters: list[str]):
        self.pair = pair
        self.masters_dir = keys_dir / MASTERS_FOLDER
        self._configured = frozenset(configured_masters)
        self._from_files = frozenset(load_public_keys(self.masters_dir))  # a bad file is an error at start
        self._scanned = time.monotonic()
        self._seen: set[str] = set()
        self.stats = GuardStats()
        self._auth: _Authenticator | None = None

    @classmethod
    def load(cls, keys_dir: Path, configured_masters: list[str]) -> CourtGuard:
        """The court's pair and trusted masters; raises :class:`KeyFileError` with what to do."""
        pair = load_key_pair(keys_dir, COURT_KEY_NAME, hint="make it with `restrike keys init court`")
        return cls(pair, keys_dir, configured_masters)

    @property
    def masters(self) -> frozenset[str]:
        return self._configured | self._from_files

    def start(self, ctx: zmq.asyncio.Context) -> None:
        """Answer ZAP requests on ``ctx`` (call before binding any socket it secures)."""
        self._auth = _Authenticator(ctx)
        self._auth.configure_curve_callback(ZAP_DOMAIN.decode(), credentials_provider=self)
        self._auth.start()
        if not self.masters:
            logger.warning(
                "This court trusts no master key yet: no master can read its events or command it. "
                "Add one with `restrike keys add-master KEY` (or [security] master_keys)."
            )

    def stop(self) -> None:
        """Stop at once; only safe before the loop ran the ZAP task (a failed bind in the constructor)."""
        if self._auth is not None:
            self._auth.stop()
            self._auth = None

    async def async_stop(self) -> None:
        """Stop answering ZAP; the sockets it secured must be closed right after."""
        if self._auth is not None:
            await self._auth.async_stop()
            self._auth = None

    def secure(self, sock: zmq.asyncio.Socket) -> None:
        """Make a socket of the court's a CURVE server checked by this guard."""
        secure_server(sock, self.pair)

    def callback(self, domain: str, key: bytes) -> bool:
        """ZAP's question for each connection: is this client key one of our masters?"""
        text = key.decode("ascii", "replace")
        address = self._auth.peer_address if self._auth is not None else "?"
        if text not in self.masters and time.monotonic() - self._scanned > RESCAN_SECONDS:
            self._rescan()
        if text in self.masters:
            self.stats.accepted += 1
            if text not in self._seen:
                self._seen.add(text)
                logger.info("Master %s connected from %s", fingerprint(text), address)
            return True
        self.stats.refused += 1
        logger.log(
            level_for_repeat(self.stats.refused),
            "Refused a connection from %s: its key %s is not one of this court's masters (%d refused so far)",
            address, fingerprint(text), self.stats.refused,
        )
        return False

    def _rescan(self) -> None:
        self._scanned = time.monotonic()
        try:
            self._from_files = frozenset(load_public_keys(self.masters_dir))
        except KeyFileError as exc:  # keep the keys we had; the operator fixes the file
            logger.error("Could not reload the trusted master keys: %s", exc)


class _Authenticator(AsyncioAuthenticator):
    """pyzmq's asyncio ZAP handler, remembering the peer's address for the guard's log lines."""

    def __init__(self, ctx: zmq.asyncio.Context):
        super().__init__(ctx, log=logging.getLogger("zmq.auth"))
        self.peer_address = "?"

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        self.peer_address = msg[3].decode("utf-8", "replace") if len(msg) > 3 else "?"
        await super().handle_zap_message(msg)

    async def async_stop(self) -> None:
        """pyzmq's ``stop()`` closes the ZAP socket while its polling task is merely cancelled: the task
        then removes its reader from the loop later, by file descriptor, and a ZAP socket of a court
        started again in this process may have that descriptor by then, so it would never be read
        (every connection hangs in its handshake). Let the task end first, then stop."""
        task = getattr(self, "_AsyncioAuthenticator__task", None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.sleep(0)  # the poll's own clean-up callbacks run now
        self.stop()
