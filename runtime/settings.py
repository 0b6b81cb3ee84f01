"""Configuration files for every process: strict pydantic settings from TOML, overrides and the environment.

Precedence: explicit overrides (command-line options) > the TOML file > environment > defaults.
Errors name the file and every offending key, so an operator can fix them in one go.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from runtime.errors import OperatorError

__all__ = ["ConfigError", "FileSettings", "key_line", "load_settings"]

S = TypeVar("S", bound="FileSettings")


class ConfigError(OperatorError):
    """A configuration that cannot be used, with a message fit for an operator."""

    heading = "Configuration error"
    exit_code = 2


class FileSettings(BaseSettings):
    """Settings whose values come from keyword arguments (file + overrides), then the environment."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``, level by level; ``None`` means "not given"."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict):
            current = out.get(key)
            nested = _merge(current if isinstance(current, dict) else {}, value)
            if nested:
                out[key] = nested
        elif value is not None:
            out[key] = value
    return out


_TABLE = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.\-\s\"']+?)\s*=")


def key_line(text: str, key: tuple[str, ...]) -> int | None:
    """The line (from 1) of a TOML file where ``key`` (e.g. ``("udp", "port")``) is set, if it is."""
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), 1):
        if match := _TABLE.match(line):
            table = tuple(part.strip().strip("\"'") for part in match.group(1).split("."))
        elif match := _KEY.match(line):
            dotted = tuple(part.strip().strip("\"'") for part in match.group(1).split("."))
            if table + dotted == key:
                return number
    return None


def _problems(errors: list[Any], text: str) -> str:
    """Every problem on one line, in the file's order, each with its line when the file sets the key."""
    found = []
    for err in errors:
        key = tuple(str(part) for part in err["loc"] if not isinstance(part, int))
        line = key_line(text, key) if text else None
        found.append((line or 0, f"{'' if line is None else f'line {line}: '}{'.'.join(key)}: {err['msg']}"))
    return "; ".join(problem for _, problem in sorted(found, key=lambda item: item[0]))


def load_settings(model: type[S], path: Path | None = None, overrides: dict[str, Any] | None = None) -> S:
    """``model`` from a TOML file (optional) merged with overrides (``None`` values are ignored)."""
    data: dict[str, Any] = {}
    text = ""
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return model(**_merge(data, overrides or {}))
    except ValidationError as exc:
        raise ConfigError(f"{path or 'configuration'}: {_problems(exc.errors(), text)}") from None
