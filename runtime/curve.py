"""CURVE keys as text: checking, fingerprints, the certificate file format, socket options.

A key is its Z85 text (40 characters for 32 bytes), the form ZeroMQ, its certificate
files and our configs use. Nothing here touches files: :mod:`runtime.keyfiles` does.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Any

import zmq
from zmq.utils import z85

__all__ = [
    "KEY_TEXT_LENGTH",
    "ZAP_DOMAIN",
    "BadKey",
    "KeyPair",
    "certificate_text",
    "check_public_key",
    "fingerprint",
    "new_key_pair",
    "parse_certificate",
    "secure_client",
    "secure_server",
]

KEY_TEXT_LENGTH = 40
#: The ZAP domain of the courts' sockets. With ZAP enforced, a socket refuses every peer
#: when no authenticator answers, instead of libzmq's default of letting everyone in.
ZAP_DOMAIN = b"restrike"


class BadKey(ValueError):
    """Text that is not a CURVE key; the message says what is wrong, never the key itself."""


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A public key and its secret; the secret never appears in a repr or a log."""

    public: str
    secret: str

    def __repr__(self) -> str:
        return f"KeyPair(public={self.public!r}, fingerprint={fingerprint(self.public)!r})"


def new_key_pair() -> KeyPair:
    """A fresh pair from libzmq's generator."""
    public, secret = zmq.curve_keypair()
    return KeyPair(public.decode("ascii"), secret.decode("ascii"))


def check_public_key(text: str) -> str:
    """The key in ``text`` (surrounding blanks and quotes dropped); raises :class:`BadKey`."""
    key = text.strip().strip("'\"")
    if len(key) != KEY_TEXT_LENGTH:
        raise BadKey(f"a CURVE key is {KEY_TEXT_LENGTH} characters of Z85 text, this one has {len(key)}")
    try:
        z85.decode(key)
    except (ValueError, KeyError):
        raise BadKey("a CURVE key is Z85 text; this one has characters outside Z85") from None
    except struct.error:  # a 5-character group worth more than 32 bits
        raise BadKey("not a valid Z85 key (a group is out of range)") from None
    return key


def fingerprint(public_key: str) -> str:
    """A short form a person compares by eye, e.g. ``3F9A-12C4-77B0-E1D2`` (64 bits of SHA-256)."""
    digest = hashlib.sha256(public_key.encode("ascii")).hexdigest()[:16].upper()
    return "-".join(digest[i : i + 4] for i in range(0, 16, 4))


def certificate_text(public: str, secret: str | None, banner: str) -> str:
    """The ZeroMQ certificate format (what ``zmq.auth.load_certificate`` and czmq read)."""
    lines = [f"#   {line}" for line in banner.splitlines()]
    lines += ["", "metadata", "curve", f'    public-key = "{public}"']
    if secret is not None:
        lines.append(f'    secret-key = "{secret}"')
    return "\n".join(lines) + "\n"


def parse_certificate(text: str) -> tuple[str, str | None]:
    """``(public, secret or None)`` from a certificate's text; raises :class:`BadKey`."""
    public = secret = None
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if not sep or name.startswith("#"):
            continue
        if name.strip() == "public-key":
            public = check_public_key(value)
        elif name.strip() == "secret-key":
            try:
                secret = check_public_key(value)
            except BadKey:
                raise BadKey("the secret key in it is not a valid CURVE key") from None
    if public is None:
        raise BadKey("no public-key line")
    return public, secret


def secure_server(sock: zmq.Socket[Any], pair: KeyPair) -> None:
    """Make a binding socket a CURVE server whose peers the ZAP handler must accept."""
    sock.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN)
    sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
    sock.curve_secretkey = pair.secret.encode("ascii")
    sock.curve_publickey = pair.public.encode("ascii")
    sock.curve_server = True


def secure_client(sock: zmq.Socket[Any], pair: KeyPair, server_key: str) -> None:
    """Make a connecting socket a CURVE client that only talks to the holder of ``server_key``."""
    sock.curve_secretkey = pair.secret.encode("ascii")
    sock.curve_publickey = pair.public.encode("ascii")
    sock.curve_serverkey = server_key.encode("ascii")
