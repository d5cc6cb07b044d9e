"""Release hygiene (issue 20 point 5): the changelog names the version being shipped, and the
wheel target cannot pack a stale build/ (setuptools copies build/lib into the wheel as is)."""

import tomllib
from pathlib import Path

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
