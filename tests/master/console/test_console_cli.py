"""`restrike master user ...` and `restrike master run --http-port`, as an operator types them."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from master.accounts import AccountStore
from restrike.venue_keys import ensure_key_pair
from tests.support import restrike_exe


def restrike(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([restrike_exe(), *args], input=stdin, text=True, capture_output=True, timeout=60)


@pytest.mark.slow
def test_users_are_managed_from_the_command_line(pg_url: str) -> None:
    assert restrike("master", "user", "list", "--db", pg_url).stdout == ""
    added = restrike("master", "user", "add", "director", "--db", pg_url, "--password-stdin", stdin="first password\n")
    assert added.returncode == 0, added.stderr
    again = restrike("master", "user", "add", "director", "--db", pg_url, "--password-stdin", stdin="first password\n")
    assert again.returncode == 2 and "exists already" in again.stderr and "Traceback" not in again.stderr
    short = restrike("master", "user", "add", "other", "--db", pg_url, "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    changed = restrike("master", "user", "passwd", "director", "--db", pg_url, "--password-stdin", stdin="second password\n")
    assert changed.returncode == 0, changed.stderr
    store = AccountStore(pg_url)
    try:
        assert store.check_password("director", "second password")
        assert restrike("master", "user", "list", "--db", pg_url).stdout.split() == ["director"]
        assert restrike("master", "user", "remove", "director", "--db", pg_url).returncode == 0
        assert store.list_users() == []
    finally:
        store.close()
    missing = restrike("master", "user", "remove", "director", "--db", pg_url)
    assert missing.returncode == 2 and "no user 'director'" in missing.stderr


@pytest.mark.slow
def test_a_taken_console_port_is_a_clear_error(pg_url: str, tmp_path: Path) -> None:
    ensure_key_pair(tmp_path / "keys", "master")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [restrike_exe(), "master", "run", "--db", pg_url, "-d", str(tmp_path), "--no-mdns", "--http-port", str(port)],
            text=True, capture_output=True, timeout=60,
        )
    assert result.returncode == 2
    assert f"cannot listen on 0.0.0.0:{port}" in result.stderr and "--http-port" in result.stderr
    assert "Traceback" not in result.stderr
