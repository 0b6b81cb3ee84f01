"""Configuration files for every process: strict pydantic settings from TOML, overrides and the environment.

Precedence: explicit overrides (command-line options) > the TOML file > environment > defaults.
Errors name the file and every offending key, so an operator can fix them in one go.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

__all__ = ["ConfigError", "FileSettings", "load_settings"]

S = TypeVar("S", bound="FileSettings")


class ConfigError(Exception):
    """A configuration that cannot be used, with a message fit for an operator."""


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
            nested = _merge(out.get(key) if isinstance(out.get(key), dict) else {}, value)
            if nested:
                out[key] = nested
        elif value is not None:
            out[key] = value
    return out


def load_settings(model: type[S], path: Path | None = None, overrides: dict[str, Any] | None = None) -> S:
    """``model`` from a TOML file (optional) merged with overrides (``None`` values are ignored)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return model(**_merge(data, overrides or {}))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"{path or 'configuration'}: {problems}") from None
