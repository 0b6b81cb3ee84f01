"""A central database that cannot be used is one or two lines, never a traceback, and never shows the password.

Real processes against the real PostgreSQL of the suite (and a port nothing listens on).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from restrike.ports import free_port
from tests.master.conftest import ADMIN_URL
from tests.support import restrike_exe

PASSWORD = "s3cret-Pw"


def _url(**parts: object) -> str:
    return make_url(ADMIN_URL).set(password=PASSWORD, **parts).render_as_string(hide_password=False)


CASES = {
    "no such host": (lambda: _url(host="nosuchhost.invalid"), "no such host 'nosuchhost.invalid'", 1),
    "refused": (lambda: _url(host="127.0.0.1", port=free_port()), "connection refused by 127.0.0.1:", 1),
    "authentication": (lambda: _url(username="no_such_role"), "authentication failed for user 'no_such_role'", 2),
    "no such database": (lambda: _url(database="no_such_db"), "database 'no_such_db' does not exist", 2),
    "driver missing": (lambda: _url(drivername="postgresql+asyncpg"), "driver asyncpg is not installed", 2),
    "not a URL": (lambda: f"postgresql://restrike:{PASSWORD}@host:port/db", "is not a database URL", 2),
}


def _check(result: subprocess.CompletedProcess[str], expected: str, code: int) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert "Traceback" not in output
    assert PASSWORD not in output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Central database:")]
    assert len(errors) == 1, result.stderr
    assert expected in errors[0] and "***" in errors[0]
    return errors[0]


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_status_says_what_is_wrong_with_the_database(case: str) -> None:
    url, expected, code = CASES[case]
    result = subprocess.run([restrike_exe(), "master", "status", "--db", url()], capture_output=True, text=True, timeout=60)
    assert len(result.stderr.strip().splitlines()) <= 2
    _check(result, expected, code)


@pytest.mark.parametrize("case", ["refused", "no such database"])
def test_run_stops_at_once_with_the_same_line(case: str, tmp_path: Path) -> None:
    url, expected, code = CASES[case]
    env_url = url()
    result = subprocess.run(
        [restrike_exe(), "master", "run", "--no-mdns", "-d", str(tmp_path)],
        capture_output=True, text=True, timeout=60, env={"RESTRIKE_MASTER_DATABASE_URL": env_url, "PATH": "/usr/bin:/bin"},
    )
    _check(result, expected, code)


def test_debug_shows_the_traceback_still_without_the_password() -> None:
    url, _, code = CASES["refused"]
    result = subprocess.run([restrike_exe(), "--debug", "master", "status", "--db", url()], capture_output=True, text=True, timeout=60)
    assert result.returncode == code
    assert "Traceback" in result.stderr and "connection refused" in result.stderr
    assert PASSWORD not in result.stderr


def test_data_folder_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    result = subprocess.run([restrike_exe(), "master", "run", "--no-mdns", "-d", str(tmp_path / "afile" / "master")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"Central database: cannot create the data folder {tmp_path / 'afile' / 'master'}: Not a directory"
    )


@pytest.mark.parametrize("where", ["--data-dir", "--db"])
def test_status_never_creates_a_database(tmp_path: Path, where: str) -> None:
    target = str(tmp_path / "master") if where == "--data-dir" else f"sqlite:///{tmp_path / 'central.sqlite3'}"
    result = subprocess.run([restrike_exe(), "master", "status", where, target], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no master database" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_run_on_the_default_database_does_not_dress_other_failures_as_a_database_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --db the database is a file in the data folder: a failure elsewhere stays what it is."""
    import master.app
    from master import cli as master_cli

    async def broken(cfg: object) -> None:
        raise ValueError("a failure that is not the database's")

    monkeypatch.setattr(master.app, "run_master", broken)
    result = CliRunner().invoke(master_cli.app, ["run", "--no-mdns", "-d", str(tmp_path)])
    assert isinstance(result.exception, ValueError), result.exception
    assert str(result.exception) == "a failure that is not the database's"


def test_only_the_database_driver_missing_reads_as_a_driver_problem() -> None:
    from master.db.errors import unusable_database

    problem = unusable_database(ModuleNotFoundError("No module named 'asyncpg'", name="asyncpg"), "postgresql+asyncpg://u@h/db")
    assert problem is not None and "the database driver asyncpg is not installed" in str(problem)
    # A module the master imports while it runs (a page's library, say) is not the database's problem.
    assert unusable_database(ModuleNotFoundError("No module named 'nicegui'", name="nicegui"), "sqlite:////tmp/c.sqlite3") is None
