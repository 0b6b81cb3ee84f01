"""reStrike VTA: the ``restrike`` command line and the tools that span slave and master."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("restrike-vta")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
