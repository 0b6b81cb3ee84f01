"""What both daemons need at run time and nothing else: settings loading, logging, lifecycle, version.

Sits above ``shared`` and below ``slave_agent`` / ``master``; imports only ``shared`` and libraries.
"""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("restrike-vta")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
