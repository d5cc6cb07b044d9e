"""carebot's version, from one source: the installed package's metadata (``pyproject.toml``'s
``version``). ``carebot --version``, ``carebot doctor``, ``/healthz``, the console footer and
the log banner all read :data:`VERSION`, so they can never disagree with the wheel that is
installed (the way back after an upgrade starts from knowing what runs)."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "carebot"
UNKNOWN = "0+unknown"
_PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _from_checkout(pyproject: Path = _PYPROJECT) -> str:
    """A source checkout run without installing (``python -m bot.cli``): its pyproject."""
    try:
        with pyproject.open("rb") as f:
            return str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return UNKNOWN


def package_version() -> str:
    """The installed distribution's version, else the checkout's, else ``0+unknown``."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return _from_checkout()


VERSION = package_version()
