"""The report ``carebot bench`` writes: ``docs/benchmarks.md``."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from benchmarks.common import Figure, Target, cell
from bot.clock import SystemClock

BENCHMARKS_MD = Path("docs/benchmarks.md")


def write_report(figures: list[Figure], path: Path = BENCHMARKS_MD, *, scale: float = 1.0,
                 databases: dict[str, str] | None = None) -> None:
    """The report: machine and date, then one table per database (``databases`` maps each
    figure's database to a description; the targets are judged on SQLite)."""
    now = SystemClock().now()
    scaled = "" if scale == 1 else f"; sizes scaled by {scale:g}"
    databases = databases or {"SQLite": Target("SQLite").description}
    lines = [
        "# Benchmarks",
        "",
        "Written by `carebot bench`; every figure is measured in the same run as its baseline.",
        "",
        f"- date: {now:%Y-%m-%d %H:%M} UTC",
        (f"- machine: {platform.machine()}, {os.cpu_count()} cores, "
         f"Python {platform.python_version()}, {platform.system()} {platform.release()}"),
        f"- databases: {', '.join(databases)}{scaled}",
    ]
    for label, description in databases.items():
        judged = "the targets are judged here" if label == "SQLite" else \
            "reported beside SQLite; the targets are judged on SQLite"
        lines += [
            "", f"## {label}", "", f"{description}; {judged}.", "",
            "| benchmark | result | target | met | baseline | ours / baseline | note |",
            "| --- | ---: | --- | --- | ---: | ---: | --- |",
        ]
        for f in figures:
            if f.database != label:
                continue
            base = f"{cell(f.baseline)} {f.unit}" if f.baseline is not None else "–"
            lines.append(f"| {f.name} | {cell(f.value)} {f.unit} | {f.target} | "
                         f"{'yes' if f.met else '**no**'} | {base} | {f.ratio} | {f.note} |")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
