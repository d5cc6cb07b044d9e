"""A smoke run of `carebot bench` at tiny sizes, so the benchmarks never rot.

Only that every benchmark runs and its figures are sane is checked here, not the targets
(those are for the full sizes, on a quiet machine: `carebot bench`).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import pytest

from benchmarks import common
from benchmarks.cli import BENCHMARKS
from benchmarks.importing import IMPORT_ROWS
from benchmarks.report import BENCHMARKS_MD
from benchmarks.scan import SCAN_OWNERS
from bot.cli import build_parser
from bot.config import Settings


def _settings() -> Settings:
    values: dict[str, Any] = {"_env_file": None}
    return Settings(**values)


def test_scale_multiplies_the_sizes_and_is_checked() -> None:
    args = build_parser().parse_args(["bench", "--scale", "0.002", "--only", "scan"])
    assert args.scale == 0.002 and args.only == ["scan"]
    assert common.size(SCAN_OWNERS, args.scale, 100) == 2_000
    assert common.size(IMPORT_ROWS, 0.0001, 20) == 20  # never below the minimum
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "--scale", "0"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "--only", "nonsense"])


def test_vins_are_distinct_and_valid() -> None:
    from bot.vin import check_vin

    vins = [common.vin(i) for i in (0, 1, 999_999, 1_000_000, 7_654_321)]
    assert len(set(vins)) == len(vins)
    assert all(check_vin(v).ok and check_vin(v).warning is None for v in vins)


async def test_every_benchmark_runs_at_a_tiny_scale(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "benchmarks.md"
    docs = Path(BENCHMARKS_MD)
    before = docs.stat().st_mtime_ns if docs.exists() else None
    args = build_parser().parse_args([
        "bench", "--scale", "0.002", "--owners", "30", "--rate", "200", "--db", "sqlite",
        "--output", str(report),
    ])

    await args.run(_settings(), args)

    out = capsys.readouterr().out
    for name in BENCHMARKS:
        assert f"running {name} on SQLite" in out
    text = report.read_text(encoding="utf-8")
    assert "## SQLite" in text and "machine:" in text and "date:" in text
    rows = [line for line in text.splitlines()
            if line.startswith("| ") and not line.startswith(("| benchmark ", "| --- "))]
    assert {row.split(":")[0].lstrip("| ") for row in rows} == set(BENCHMARKS)
    assert "sizes scaled by 0.002" in text
    # Each measured figure is beside its baseline from the same run, and both sides agreed
    # on the result (a benchmark notes "CHECK" when they did not).
    assert "CHECK" not in text
    for name in ("import:", "scan: daily", "kpi:", "campaign:"):
        row = next(r for r in rows if r.startswith(f"| {name}"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        value, baseline, ratio = cells[1], cells[4], cells[5]
        assert value.endswith(" s") and baseline.endswith(" s"), row
        assert math.isfinite(float(value[:-2].replace(",", "")))
        assert float(baseline[:-2].replace(",", "")) > 0, row
        assert ratio.endswith("×"), row
    peak = next(r for r in rows if r.startswith("| import: peak RSS"))
    assert 10 < float(peak.split("|")[2].strip().split()[0].replace(",", "")) < 500
    gap = next(r for r in rows if "shortest gap" in r)
    assert float(gap.split("|")[2].strip().split()[0]) >= 0.99
    # The webhook run handled every update (no CHECK above) faster than one at a time.
    cells = [c.strip() for c in next(r for r in rows if r.startswith("| webhook: owners'"))
             .strip("|").split("|")]
    rate, base_rate = (float(c.split()[0].replace(",", "")) for c in (cells[1], cells[4]))
    assert rate > base_rate > 0
    p99 = next(r for r in rows if r.startswith("| webhook: p99"))
    assert 0 < float(p99.split("|")[2].strip().split()[0].replace(",", "")) < 10_000
    # Beside it, the same updates without the inbox: their p99 and the CPU per update of both.
    assert _number(_cells(rows, "webhook: p99")[4]) > 0
    cpu = _cells(rows, "webhook: CPU per update")
    assert _number(cpu[1]) > 0 and _number(cpu[4]) > 0 and cpu[5].endswith("×"), cpu
    _assert_crash(rows)
    # the smoke run never touches the real report
    assert (docs.stat().st_mtime_ns if docs.exists() else None) == before


def _cells(rows: list[str], name: str) -> list[str]:
    """The cells of the report's row whose benchmark starts with ``name``."""
    row = next(r for r in rows if r.startswith(f"| {name}"))
    return [c.strip() for c in row.strip("|").split("|")]


def _number(cell: str) -> float:
    return float(cell.split()[0].replace(",", ""))


def _assert_crash(rows: list[str]) -> None:
    """Every acknowledged update answered after the SIGKILL and the restart, twice only when
    in flight at the kill; the baseline without the inbox answered no more."""
    crash = _cells(rows, "crash: owners answered after")
    found = re.search(r"\((\d+) acknowledged", crash[0])
    assert found is not None, crash
    acknowledged = int(found.group(1))
    assert acknowledged == 20  # the smallest size: 2,000 × 0.002 is below it
    assert _number(crash[1]) == acknowledged and crash[3] == "yes", crash
    assert 0 <= _number(crash[4]) <= acknowledged, crash
    assert _cells(rows, "crash: owners answered twice")[3] == "yes"
    recovery = _cells(rows, "crash: time to recover")
    assert recovery[3] == "yes" and _number(recovery[1]) >= 0, recovery


async def test_every_benchmark_runs_on_postgresql(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The same smoke run on PostgreSQL: a database per benchmark, all dropped afterwards."""
    target = common.Target("PostgreSQL", common.POSTGRES_URL)
    why = await target.reachable()
    if why:
        pytest.skip(why)
    report = tmp_path / "benchmarks.md"
    args = build_parser().parse_args([
        "bench", "--scale", "0.002", "--owners", "30", "--rate", "200", "--db", "postgres",
        "--output", str(report),
    ])

    await args.run(_settings(), args)

    out = capsys.readouterr().out
    for name in BENCHMARKS:
        assert f"running {name} on PostgreSQL" in out
    text = report.read_text(encoding="utf-8")
    assert "## PostgreSQL" in text and "## SQLite" not in text
    assert "CHECK" not in text
    rows = {line.split("|")[1].split(":")[0].strip() for line in text.splitlines()
            if line.startswith("| ") and not line.startswith(("| benchmark ", "| --- "))}
    assert rows == set(BENCHMARKS)
    _assert_crash([line for line in text.splitlines() if line.startswith("| crash")])
    import asyncpg

    conn = await asyncpg.connect(common.POSTGRES_URL.replace("postgres://", "postgresql://", 1))
    try:
        left = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1",
                                f"carebot_bench_{os.getpid()}_%")
    finally:
        await conn.close()
    assert left == []


async def test_without_the_checkout_bench_says_where_it_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An installed wheel has no benchmarks/ beside bot/: `carebot bench`, with any options,
    says that the benchmarks run from a source checkout (and fails), never a usage error."""
    import argparse

    from bot.cli.core import _add_bench

    parser = argparse.ArgumentParser(prog="carebot")
    _add_bench(parser.add_subparsers(dest="command", required=True), checkout=tmp_path)
    args = parser.parse_args(["bench", "--only", "crash", "--scale", "0.5"])

    assert await args.run(_settings(), args) == 2
    err = capsys.readouterr().err
    assert "source checkout" in err and "benchmarks/" in err


def test_benchmarks_are_not_packaged() -> None:
    """The wheel ships bot and db only; bot never imports benchmarks but through the CLI's
    hook (read from the sources, so a stray import fails here)."""
    import re
    import tomllib
    from fnmatch import fnmatch

    root = Path(__file__).resolve().parent.parent
    find = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))[
        "tool"]["setuptools"]["packages"]["find"]
    assert "benchmarks*" in find["exclude"]
    assert not any(fnmatch("benchmarks", pattern) for pattern in find["include"])
    imports = re.compile(r"^\s*(from|import)\s+benchmarks\b|import_module\(\"benchmarks",
                         re.MULTILINE)
    importers = {str(p.relative_to(root)) for p in (root / "bot").rglob("*.py")
                 if imports.search(p.read_text(encoding="utf-8"))}
    assert importers == {"bot/cli/core.py"}


def test_a_partial_run_keeps_the_other_rows(tmp_path: Path) -> None:
    """`--only crash` at full size rewrites crash's rows on the databases it ran on and
    keeps every other row of the report, saying which run each kept row comes from."""
    from benchmarks.common import Figure
    from benchmarks.report import read_earlier, write_report

    def figure(name: str, value: float, database: str) -> Figure:
        return Figure(name, value, "s", "≤ 1 s", True, 2.0, "a note", database)

    def results(section: str) -> list[str]:
        return [r.split("|")[2].strip() for r in section.splitlines()
                if r.startswith("| ") and not r.startswith(("| benchmark ", "| --- "))]

    path = tmp_path / "benchmarks.md"
    pg = "PostgreSQL 15 at 127.0.0.1:5432"
    write_report([figure("dispatch: share", 1.0, "SQLite"),
                  figure("crash: answered", 2.0, "SQLite"),
                  figure("dispatch: share", 3.0, "PostgreSQL"),
                  figure("crash: answered", 4.0, "PostgreSQL")], path,
                 databases={"SQLite": "SQLite 3", "PostgreSQL": pg})
    text = path.read_text(encoding="utf-8")
    assert "Rows kept" not in text and "benchmarks/" in text and "source checkout" in text
    first = "2026-01-02 03:04 UTC"  # the first run, as if long ago
    path.write_text(re.sub(r"- date: .*", f"- date: {first}", text), encoding="utf-8")
    order = ["dispatch", "crash"]

    write_report([figure("crash: answered", 5.0, "SQLite")], path,
                 databases={"SQLite": "SQLite 3"}, order=order,
                 earlier=read_earlier(path, ["crash"], ["SQLite"]))

    text = path.read_text(encoding="utf-8")
    sqlite, postgres = text.split("## PostgreSQL")
    assert results(sqlite) == ["1.00 s", "5.00 s"]  # dispatch kept, crash new, suite order
    assert results(postgres) == ["3.00 s", "4.00 s"]  # not run there: all kept
    assert "- databases: SQLite, PostgreSQL\n" in text and f"{pg}; reported beside" in text
    assert f"Rows kept from earlier runs: dispatch ({first})." in sqlite
    assert f"Rows kept from earlier runs: dispatch, crash ({first})." in postgres
    second = next(line for line in text.splitlines() if line.startswith("- date: "))[8:]

    # Again: each kept row still says the run it is from.
    path.write_text(text.replace(f"- date: {second}", "- date: 2026-02-03 04:05 UTC"),
                    encoding="utf-8")
    write_report([figure("dispatch: share", 6.0, "SQLite")], path,
                 databases={"SQLite": "SQLite 3"}, order=order,
                 earlier=read_earlier(path, ["dispatch"], ["SQLite"]))
    sqlite, postgres = path.read_text(encoding="utf-8").split("## PostgreSQL")
    assert results(sqlite) == ["6.00 s", "5.00 s"]
    assert "Rows kept from earlier runs: crash (2026-02-03 04:05 UTC)." in sqlite
    assert f"Rows kept from earlier runs: dispatch, crash ({first})." in postgres
