"""``restrike keys ...``: the CURVE key pairs of a court or of the master, and the masters a court trusts."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from runtime.curve import BadKey, check_public_key, fingerprint, new_key_pair
from runtime.keyfiles import key_pair_paths, load_key_pair, load_public_key, load_public_keys, write_key_pair, write_public_key

__all__ = ["app"]

app = typer.Typer(
    help="CURVE keys: every court and the master have a key pair; courts answer only the masters they trust, "
    "the master talks only to courts the director approved.",
    no_args_is_help=True,
)
err = Console(stderr=True)


class Role(StrEnum):
    court = "court"
    master = "master"


RoleArg = Annotated[Role, typer.Argument(help="Whose keys: this court laptop's, or the venue master's")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="The court's or the master's TOML config")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", "-d", help="Data folder (keys go in DATA_DIR/keys)")]
KeysDirOpt = Annotated[Path | None, typer.Option("--keys-dir", help="Key folder, overriding the config")]


def keys_folder(role: Role, config: Path | None, data_dir: Path | None, keys_dir: Path | None) -> Path:
    """The folder the court agent or the master would read its keys from with these options."""
    if keys_dir is not None:
        return keys_dir
    if role is Role.court:
        from slave_agent.config import load_config

        return load_config(config, {"data_dir": data_dir}).keys_folder
    from master.config import load_master_config

    return load_master_config(config, {"data_dir": data_dir}).keys_folder


@app.command()
def init(
    role: RoleArg,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    keys_dir: KeysDirOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing pair (every peer must then get the new key)")] = False,
) -> None:
    """Make the key pair (NAME.key public, NAME.key_secret readable by its owner only)."""
    folder = keys_folder(role, config, data_dir, keys_dir)
    pair = new_key_pair()
    public_path, secret_path = write_key_pair(folder, role.value, pair, force=force)
    err.print(f"Made {secret_path} (secret, mode 0600) and {public_path} (public).")
    typer.echo(pair.public)
    err.print(f"Fingerprint {fingerprint(pair.public)}")
    if role is Role.court:
        err.print("Next: on the master, `restrike master approve NODE` once it lists this court as pending "
                  "(compare the fingerprint), and here `restrike keys add-master MASTER_KEY`.")
    else:
        err.print(f"Next: on every court, `restrike keys add-master {pair.public}` (or copy {public_path.name} "
                  "into the court's keys/masters/ folder).")


@app.command()
def show(role: RoleArg, config: ConfigOpt = None, data_dir: DataDirOpt = None, keys_dir: KeysDirOpt = None) -> None:
    """Print the public key (stdout) and its fingerprint, to compare by eye on the other machine."""
    folder = keys_folder(role, config, data_dir, keys_dir)
    pair = load_key_pair(folder, role.value, hint=f"make it with `restrike keys init {role.value}`")
    masters = load_public_keys(folder / "masters") if role is Role.court else {}
    typer.echo(pair.public)
    err.print(f"Fingerprint {fingerprint(pair.public)}  ({key_pair_paths(folder, role.value)[0]})")
    if role is Role.court:
        for key, path in masters.items():
            err.print(f"Trusts master {fingerprint(key)}  ({path.name})")
        if not masters:
            err.print("Trusts no master key file yet (`restrike keys add-master KEY`; [security] master_keys also counts).")


@app.command("add-master")
def add_master(
    key: Annotated[str, typer.Argument(help="The master's public key, or a file holding it (master.key)")],
    name: Annotated[str, typer.Option(help="File name in the court's keys/masters/ folder")] = "master",
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    keys_dir: KeysDirOpt = None,
) -> None:
    """Let a master read this court's events and command it (a running agent picks it up within seconds)."""
    folder = keys_folder(Role.court, config, data_dir, keys_dir) / "masters"
    try:
        text = load_public_key(Path(key)) if Path(key).is_file() else check_public_key(key)
    except BadKey as exc:
        raise typer.BadParameter(str(exc), param_hint="KEY") from None
    path = write_public_key(folder, name, text)
    err.print(f"This court now trusts master {fingerprint(text)} ({path}).")
