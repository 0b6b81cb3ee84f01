"""Key files on disk: a key pair per process (secret file mode 0600) and folders of trusted public keys.

The files are ZeroMQ certificates (``NAME.key`` public, ``NAME.key_secret`` both keys), so
pyzmq's and czmq's tools read them too. Every problem is a :class:`KeyFileError` whose
message names the file and what to do about it.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

from runtime.curve import BadKey, KeyPair, certificate_text, check_public_key, parse_certificate
from runtime.errors import OperatorError

__all__ = [
    "PUBLIC_SUFFIX",
    "SECRET_SUFFIX",
    "KeyFileError",
    "key_pair_paths",
    "load_key_pair",
    "load_public_key",
    "load_public_keys",
    "write_key_pair",
    "write_public_key",
]

PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"

_SECRET_BANNER = "reStrike VTA CURVE secret key ({name}), made {when}.\nDo not copy this file anywhere; give out {name}.key instead."
_PUBLIC_BANNER = "reStrike VTA CURVE public key ({name}), made {when}.\nCompare its fingerprint (`restrike keys show`) when you hand it over."


class KeyFileError(OperatorError):
    """A key file that is missing, unreadable, malformed or too open; the message says what to do."""

    heading = "Key problem"
    exit_code = 2  # retrying cannot help: a person must make, fix or chmod the file


def key_pair_paths(folder: Path, name: str) -> tuple[Path, Path]:
    """``(public file, secret file)`` of the pair called ``name`` in ``folder``."""
    return folder / f"{name}{PUBLIC_SUFFIX}", folder / f"{name}{SECRET_SUFFIX}"


def write_key_pair(folder: Path, name: str, pair: KeyPair, *, force: bool = False) -> tuple[Path, Path]:
    """Write both files (the secret one mode 0600); refuses to replace an existing pair unless ``force``."""
    public_path, secret_path = key_pair_paths(folder, name)
    existing = [p for p in (public_path, secret_path) if p.exists()]
    if existing and not force:
        raise KeyFileError(
            f"{existing[0]} already exists: replacing it changes this machine's identity, and every peer "
            "that trusts the old key must be given the new one. Pass --force to do it anyway."
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        _write(secret_path, certificate_text(pair.public, pair.secret, _SECRET_BANNER.format(name=name, when=when)), 0o600)
        _write(public_path, certificate_text(pair.public, None, _PUBLIC_BANNER.format(name=name, when=when)), 0o644)
    except OSError as exc:
        raise KeyFileError(f"cannot write the key pair into {folder}: {exc.strerror or exc}") from None
    return public_path, secret_path


def load_key_pair(folder: Path, name: str, *, hint: str) -> KeyPair:
    """The pair called ``name``; ``hint`` tells the operator how to make one when it is missing."""
    _, secret_path = key_pair_paths(folder, name)
    if not secret_path.exists():
        raise KeyFileError(f"no {name} key pair in {folder} ({secret_path.name} is missing): {hint}")
    if os.name == "posix":
        mode = stat.S_IMODE(secret_path.stat().st_mode)
        if mode & 0o077:
            raise KeyFileError(
                f"{secret_path} can be read by other users (mode {mode:04o}); its key would no longer be secret. "
                f"Run: chmod 600 {secret_path}"
            )
    public, secret = _parse(secret_path)
    if secret is None:
        raise KeyFileError(f"{secret_path} holds no secret-key line: is it a public key file? {hint}")
    return KeyPair(public, secret)


def load_public_key(path: Path) -> str:
    """The public key in a certificate file, or in a file holding just the key's text."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc}") from None
    if "public-key" not in text:
        try:
            return check_public_key(text)
        except BadKey as exc:
            raise KeyFileError(f"{path}: {exc}") from None
    return _parse(path, text)[0]


def load_public_keys(folder: Path) -> dict[str, Path]:
    """Every ``*.key`` file of ``folder`` (none when it does not exist), key -> file."""
    if not folder.is_dir():
        return {}
    return {load_public_key(path): path for path in sorted(folder.glob(f"*{PUBLIC_SUFFIX}"))}


def write_public_key(folder: Path, name: str, key: str) -> Path:
    """Store someone else's public key as ``folder/name.key``."""
    path = folder / f"{name}{PUBLIC_SUFFIX}"
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _write(path, certificate_text(check_public_key(key), None, _PUBLIC_BANNER.format(name=name, when=when)), 0o644)
    except OSError as exc:
        raise KeyFileError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def _parse(path: Path, text: str | None = None) -> tuple[str, str | None]:
    try:
        return parse_certificate(text if text is not None else path.read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc}") from None
    except BadKey as exc:
        raise KeyFileError(f"{path} is not a usable key file: {exc}") from None


def _write(path: Path, text: str, mode: int) -> None:
    """Create with ``mode`` from the start (never briefly world-readable), and fix an older file's mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        if os.name == "posix":
            os.fchmod(out.fileno(), mode)
        out.write(text)
