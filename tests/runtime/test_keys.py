"""CURVE keys: checking, fingerprints, key files (modes, overwrite, damage), and `restrike keys`."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
import zmq.auth

from runtime.curve import BadKey, check_public_key, fingerprint, new_key_pair, parse_certificate
from runtime.keyfiles import (
    KeyFileError,
    key_pair_paths,
    load_key_pair,
    load_public_key,
    load_public_keys,
    write_key_pair,
    write_public_key,
)
from tests.support import restrike_exe

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def test_a_key_is_40_characters_of_z85() -> None:
    pair = new_key_pair()
    assert check_public_key(f'  "{pair.public}"\n') == pair.public
    with pytest.raises(BadKey, match="40 characters"):
        check_public_key(pair.public[:-1])
    with pytest.raises(BadKey, match="outside Z85"):
        check_public_key("~" * 40)
    with pytest.raises(BadKey, match="out of range"):
        check_public_key("#" * 40)  # every group above 2**32


def test_fingerprints_are_short_stable_and_differ() -> None:
    a, b = new_key_pair().public, new_key_pair().public
    assert fingerprint(a) == fingerprint(a)
    assert fingerprint(a) != fingerprint(b)
    assert len(fingerprint(a)) == 19 and fingerprint(a).count("-") == 3


def test_a_pair_never_shows_its_secret() -> None:
    pair = new_key_pair()
    assert pair.secret not in repr(pair) and fingerprint(pair.public) in repr(pair)


@posix_only
def test_pair_files_modes_and_no_silent_overwrite(tmp_path: Path) -> None:
    pair = new_key_pair()
    public_path, secret_path = write_key_pair(tmp_path / "keys", "court", pair)
    assert stat.S_IMODE(secret_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(public_path.stat().st_mode) == 0o644
    assert pair.secret not in public_path.read_text()
    assert load_key_pair(tmp_path / "keys", "court", hint="") == pair
    # pyzmq's own loader reads our files: the format is ZeroMQ's
    assert zmq.auth.load_certificate(secret_path) == (pair.public.encode(), pair.secret.encode())
    assert zmq.auth.load_certificate(public_path) == (pair.public.encode(), None)

    with pytest.raises(KeyFileError, match=r"already exists.*--force"):
        write_key_pair(tmp_path / "keys", "court", new_key_pair())
    assert load_key_pair(tmp_path / "keys", "court", hint="") == pair
    other = new_key_pair()
    write_key_pair(tmp_path / "keys", "court", other, force=True)
    assert load_key_pair(tmp_path / "keys", "court", hint="") == other


@posix_only
def test_a_secret_readable_by_others_is_refused(tmp_path: Path) -> None:
    _, secret_path = write_key_pair(tmp_path, "master", new_key_pair())
    secret_path.chmod(0o644)
    with pytest.raises(KeyFileError, match=r"mode 0644.*chmod 600"):
        load_key_pair(tmp_path, "master", hint="")


def test_missing_damaged_and_public_only_files(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match=r"no court key pair.*run this"):
        load_key_pair(tmp_path, "court", hint="run this")
    _, secret_path = key_pair_paths(tmp_path, "court")
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b'curve\n    public-key = "not a key"\n')
    os.close(fd)
    with pytest.raises(KeyFileError, match="not a usable key file"):
        load_key_pair(tmp_path, "court", hint="")
    pair = new_key_pair()
    secret_path.write_text(f'curve\n    public-key = "{pair.public}"\n')
    with pytest.raises(KeyFileError, match="no secret-key line"):
        load_key_pair(tmp_path, "court", hint="")
    secret_path.write_bytes(b"\xff\xfe binary")
    with pytest.raises(KeyFileError, match="cannot read"):
        load_key_pair(tmp_path, "court", hint="")


def test_certificate_without_a_public_key_is_refused() -> None:
    with pytest.raises(BadKey, match="no public-key"):
        parse_certificate("# nothing here\ncurve\n")


def test_trusted_key_folders(tmp_path: Path) -> None:
    assert load_public_keys(tmp_path / "absent") == {}
    a, b = new_key_pair().public, new_key_pair().public
    write_public_key(tmp_path / "masters", "a", a)
    (tmp_path / "masters" / "b.key").write_text(b + "\n")  # a bare key in a file counts too
    assert set(load_public_keys(tmp_path / "masters")) == {a, b}
    assert load_public_key(tmp_path / "masters" / "b.key") == b
    (tmp_path / "masters" / "c.key").write_text("garbage")
    with pytest.raises(KeyFileError, match=r"c\.key"):
        load_public_keys(tmp_path / "masters")


def _keys(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([restrike_exe(), "keys", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_keys_cli_init_show_and_add_master(tmp_path: Path) -> None:
    court_dir, master_dir = tmp_path / "court", tmp_path / "master"
    made = _keys("init", "court", "--data-dir", str(court_dir))
    assert made.returncode == 0, made.stderr
    court_key = made.stdout.strip()
    assert check_public_key(court_key) == court_key and fingerprint(court_key) in made.stderr

    again = _keys("init", "court", "--data-dir", str(court_dir))
    assert again.returncode == 2 and "--force" in again.stderr and "Traceback" not in again.stderr
    shown = _keys("show", "court", "--data-dir", str(court_dir))
    assert shown.stdout.strip() == court_key and fingerprint(court_key) in shown.stderr
    assert "Trusts no master" in shown.stderr

    master_key = _keys("init", "master", "--data-dir", str(master_dir)).stdout.strip()
    assert (master_dir / "keys" / "master.key_secret").exists()
    added = _keys("add-master", str(master_dir / "keys" / "master.key"), "--data-dir", str(court_dir))
    assert added.returncode == 0, added.stderr
    assert f"Trusts master {fingerprint(master_key)}" in _keys("show", "court", "--data-dir", str(court_dir)).stderr
    bad = _keys("add-master", "not-a-key", "--data-dir", str(court_dir))
    assert bad.returncode == 2 and "40 characters" in bad.stderr

    replaced = _keys("init", "court", "--data-dir", str(court_dir), "--force")
    assert replaced.returncode == 0 and replaced.stdout.strip() != court_key
    assert _keys("show", "master", "--data-dir", str(tmp_path / "nowhere")).returncode == 2
