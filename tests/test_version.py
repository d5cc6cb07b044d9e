"""One version source: the package metadata, shown by ``carebot --version`` (issue 20)."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from bot import version
from bot.cli import main


def test_version_is_the_installed_packages() -> None:
    assert metadata.version("carebot") == version.VERSION


def test_cli_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"carebot {version.VERSION}"


def test_checkout_fallback(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "carebot"\nversion = "9.8.7"\n', encoding="utf-8")
    assert version._from_checkout(pyproject) == "9.8.7"
    assert version._from_checkout(tmp_path / "missing.toml") == version.UNKNOWN
