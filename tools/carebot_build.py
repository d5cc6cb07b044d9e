"""carebot's build backend: setuptools' own, with a clean ``build/`` for every wheel (issue 20
point 5).

setuptools copies whatever ``build/lib`` already holds into the wheel, files deleted since
included. A source folder that once built a newer version and was then checked out at an older
one installed the older code with the newer version's migrations (``pip install
/path/to/carebot``, the way docs/deploy.md installs from a source tree), and ``carebot
migrate`` applied them. ``pyproject.toml`` names this module as the backend, so every build --
pip from the source tree, ``make wheel``, ``python -m build`` -- starts from an empty
``build/``. Nothing else differs from setuptools."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 (every other hook as setuptools has it)


def build_wheel(wheel_directory: str, config_settings: dict[str, Any] | None = None,
                metadata_directory: str | None = None) -> str:
    """setuptools' wheel, built after removing ``build/`` (the frontend runs hooks in the
    source tree)."""
    shutil.rmtree(Path("build"), ignore_errors=True)
    return str(_setuptools.build_wheel(wheel_directory, config_settings, metadata_directory))
