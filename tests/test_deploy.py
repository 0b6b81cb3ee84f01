"""The deployment files stay true to the code: example configs, systemd units, Windows task.

The example configs are loaded with the real loaders and must equal the defaults (they
document every setting at its default), and the commented-out example values must be
valid too. The service definitions may only use sub-commands and options that the
installed ``restrike`` command has.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from master.config import ConfigError, MasterConfig, load_master_config
from slave_agent.config import SlaveConfig, load_config
from tests.support import restrike_exe

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SLAVE_EXAMPLE = DEPLOY / "slave.example.toml"
MASTER_EXAMPLE = DEPLOY / "master.example.toml"
UNITS = {
    "slave": DEPLOY / "systemd" / "restrike-slave.service",
    "master": DEPLOY / "systemd" / "restrike-master.service",
}
WINDOWS_TASK = DEPLOY / "windows" / "restrike-slave-task.xml"
TASK_NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}

#: ``# key = value``: a setting that is unset by default, shown with an example value.
_COMMENTED_SETTING = re.compile(r"^#\s?([a-z_]+) = (.+)$")


@pytest.fixture(autouse=True)
def _no_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compare file against code defaults, not against whatever the shell exports."""
    for name in list(os.environ):
        if name.startswith(("RESTRIKE_SLAVE_", "RESTRIKE_MASTER_")):
            monkeypatch.delenv(name)


# --- example configs -------------------------------------------------------------------


def test_slave_example_is_exactly_the_defaults() -> None:
    assert load_config(SLAVE_EXAMPLE).model_dump() == SlaveConfig().model_dump()


def test_master_example_is_exactly_the_defaults() -> None:
    assert load_master_config(MASTER_EXAMPLE).model_dump() == MasterConfig().model_dump()


def _leaf_keys(model: Any, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, _value in model.model_dump().items():
        sub = getattr(model, name)
        if hasattr(sub, "model_dump"):
            keys |= _leaf_keys(sub, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def _documented_keys(path: Path) -> set[str]:
    """Keys set in the file plus keys shown as ``# key = value`` in their section."""
    keys: set[str] = set()
    section = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if header := re.fullmatch(r"\[([a-z_.]+)\]", line.strip()):
            section = header.group(1) + "."
        elif match := re.match(r"^([a-z_]+) = ", line) or _COMMENTED_SETTING.match(line):
            keys.add(section + match.group(1))
    return keys


@pytest.mark.parametrize(
    ("path", "model"), [(SLAVE_EXAMPLE, SlaveConfig()), (MASTER_EXAMPLE, MasterConfig())], ids=["slave", "master"]
)
def test_example_documents_every_setting(path: Path, model: Any) -> None:
    assert _documented_keys(path) == _leaf_keys(model)


def _with_examples_enabled(path: Path) -> str:
    """The file with every ``# key = value`` line enabled whose key is not already set."""
    lines = path.read_text(encoding="utf-8").splitlines()
    active: dict[str, set[str]] = {}
    section = ""
    for line in lines:
        if header := re.fullmatch(r"\[([a-z_.]+)\]", line.strip()):
            section = header.group(1)
        elif match := re.match(r"^([a-z_]+) = ", line):
            active.setdefault(section, set()).add(match.group(1))
    out: list[str] = []
    section = ""
    for line in lines:
        if header := re.fullmatch(r"\[([a-z_.]+)\]", line.strip()):
            section = header.group(1)
        match = _COMMENTED_SETTING.match(line)
        if match and match.group(1) not in active.get(section, set()):
            line = f"{match.group(1)} = {match.group(2)}"
        out.append(line)
    return "\n".join(out) + "\n"


def test_commented_slave_examples_are_valid(tmp_path: Path) -> None:
    enabled = tmp_path / "slave.toml"
    enabled.write_text(_with_examples_enabled(SLAVE_EXAMPLE), encoding="utf-8")
    cfg = load_config(enabled)
    assert cfg.node.node_id is not None
    assert cfg.publisher.mdns_interface is not None


def test_commented_master_examples_are_valid(tmp_path: Path) -> None:
    enabled = tmp_path / "master.toml"
    enabled.write_text(_with_examples_enabled(MASTER_EXAMPLE), encoding="utf-8")
    cfg = load_master_config(enabled)
    assert cfg.database_url is not None
    assert cfg.mdns_interface is not None
    # Every alternative shown for a key that is set is valid as well.
    alternatives = [
        m for line in MASTER_EXAMPLE.read_text(encoding="utf-8").splitlines() if (m := _COMMENTED_SETTING.match(line))
    ]
    for match in alternatives:
        value = tomllib.loads(f"{match.group(1)} = {match.group(2)}")
        load_master_config(None, value)


def test_slave_validate_config_command_accepts_the_example() -> None:
    result = subprocess.run(
        [restrike_exe(), "slave", "validate-config", str(SLAVE_EXAMPLE)],
        capture_output=True, text=True, timeout=60, env=_cli_env(),
    )
    assert result.returncode == 0, result.stderr
    assert "Configuration is valid" in result.stderr


# --- service definitions ---------------------------------------------------------------


def _cli_env() -> dict[str, str]:
    """Wide, plain help output so no option name is wrapped or coloured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESTRIKE_SLAVE_", "RESTRIKE_MASTER_"))}
    env.update(COLUMNS="200", TERM="dumb", NO_COLOR="1")
    return env


def _exec_start(unit: Path) -> list[str]:
    lines = [line for line in unit.read_text(encoding="utf-8").splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1, f"{unit.name} must have exactly one ExecStart"
    return shlex.split(lines[0].removeprefix("ExecStart="))


def _split_command(args: list[str]) -> tuple[list[str], list[str]]:
    """``restrike`` arguments into the sub-command words and the ``--options`` used."""
    words: list[str] = []
    for arg in args:
        if arg.startswith("-"):
            break
        words.append(arg)
    options = [arg.split("=", 1)[0] for arg in args[len(words):] if arg.startswith("--")]
    return words, options


def _assert_cli_accepts(words: list[str], options: list[str]) -> None:
    result = subprocess.run(
        [restrike_exe(), *words, "--help"], capture_output=True, text=True, timeout=60, env=_cli_env()
    )
    assert result.returncode == 0, f"`restrike {' '.join(words)} --help` failed: {result.stderr}"
    for option in options:
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", result.stdout), (
            f"`restrike {' '.join(words)}` has no option {option}:\n{result.stdout}"
        )


@pytest.mark.parametrize("role", sorted(UNITS))
def test_systemd_unit_runs_an_existing_command(role: str) -> None:
    args = _exec_start(UNITS[role])
    assert Path(args[0]).name == "restrike" and args[0].endswith("/.venv/bin/restrike"), args[0]
    words, options = _split_command(args[1:])
    assert words == [role, "run"]
    assert args[args.index("--config") + 1] == f"/etc/restrike/{role}.toml"
    _assert_cli_accepts(words, options)


@pytest.mark.parametrize("role", sorted(UNITS))
def test_systemd_unit_service_settings(role: str) -> None:
    text = UNITS[role].read_text(encoding="utf-8")
    settings = dict(
        line.split("=", 1) for line in text.splitlines() if re.match(r"^[A-Z]\w+=", line)
    )
    assert settings["Restart"] == "on-failure"
    assert settings["KillSignal"] == "SIGTERM"
    assert int(settings["TimeoutStopSec"]) > 5  # the agent drains its queue for up to 5 s
    assert settings["User"] == "restrike"
    assert settings["WorkingDirectory"] == "/var/lib/restrike"


def test_windows_task_runs_an_existing_command() -> None:
    task = ET.parse(WINDOWS_TASK).getroot()
    assert task.find("t:Triggers/t:LogonTrigger", TASK_NS) is not None
    assert task.find("t:Settings/t:RestartOnFailure", TASK_NS) is not None
    arguments = task.findtext("t:Actions/t:Exec/t:Arguments", namespaces=TASK_NS)
    assert arguments is not None
    # cmd.exe /d /s /c ""...\restrike.exe" slave run --config "..." >> "log" 2>&1"
    command = arguments.split("restrike.exe", 1)[1].split(">>", 1)[0]
    words, options = _split_command(shlex.split(command.lstrip('"')))
    assert words == ["slave", "run"]
    assert "--config" in options
    _assert_cli_accepts(words, options)


def test_master_refuses_a_limit_smaller_than_a_page(tmp_path: Path) -> None:
    config = tmp_path / "master.toml"
    config.write_text("page_size = 2000\nheld_events_per_court = 1000\n")
    with pytest.raises(ConfigError, match=r"held_events_per_court \(1000\) must be at least page_size \(2000\)"):
        load_master_config(config)
