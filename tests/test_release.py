"""Release hygiene (issue 20 point 5): the changelog names the version being shipped, and the
wheel target -- and any build from the source tree, through tools/carebot_build.py -- cannot
pack a stale build/ (setuptools copies build/lib into the wheel as is)."""

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_changelog_names_the_packaged_version() -> None:
    with (ROOT / "pyproject.toml").open("rb") as f:
        version = tomllib.load(f)["project"]["version"]
    text = (ROOT / "CHANGELOG.md").read_text()
    headings = [ln for ln in text.splitlines() if ln.startswith("## ")]
    if headings[:1] == ["## Unreleased"]:  # what the next version will bring, above it
        headings = headings[1:]
    assert headings and headings[0] == f"## {version}", headings


def test_wheel_target_removes_build_before_building() -> None:
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = lines.index("wheel: $(STAMP)")
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    assert recipe[0].startswith("rm -rf build"), recipe
    assert any("wheel" in step and "dist" in step for step in recipe[1:]), recipe


def test_rollback_procedure_is_written() -> None:
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    section = deploy.split("### Rolling back an upgrade", 1)[1].split("\n## ", 1)[0]
    assert "--force-reinstall" in section and "pre-upgrade" in section


@pytest.mark.slow
def test_a_used_source_tree_builds_without_its_stale_build(tmp_path: Path) -> None:
    """``pip install /path/to/carebot`` (docs/deploy.md) from a folder that once built a newer
    version: what its build/lib still holds (a newer migration) stays out of the wheel."""
    tree = tmp_path / "carebot"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("bot", "db", "tools"):
        shutil.copytree(ROOT / part, tree / part, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    stale = tree / "build" / "lib" / "db" / "migrations" / "0999_from_a_newer_version.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("# left by a newer version's build\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir",
         str(tmp_path / "dist"), str(tree)], capture_output=True, text=True, timeout=600)
    if done.returncode != 0 and re.search(r"No matching distribution|Could not find a version"
                                          r"|NewConnectionError|Network is unreachable",
                                          done.stdout + done.stderr):
        pytest.skip(f"the package index is not reachable for setuptools: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stdout + done.stderr
    [wheel] = (tmp_path / "dist").glob("carebot-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "db/migrations/0001_initial.py" in names  # the real ones are there
    assert not any("0999_from_a_newer_version" in name for name in names), names
