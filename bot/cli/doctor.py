"""``carebot doctor``: is this installation ready to run? One short report -- the settings
and the env file, the database (reachable, migrations pending, an admin who can sign in),
Telegram (getMe, the webhook: URL, updates waiting, the last error), the data folder's
permissions, the scripts folder, the console's secrets -- with what to do for each problem.
Exit code 0 when nothing is wrong, 1 when something is (notes do not count)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bot.cli import checks
from bot.cli.checks import Finding
from bot.cli.say import ljust, t, width
from bot.clock import SystemClock
from bot.config import Settings
from bot.version import VERSION

DEFAULT_ENV_FILE = Path(".env")


async def diagnose(settings: Settings, env_file: Path | None) -> list[Finding]:
    """Every check, in the order the report shows them."""
    found = checks.check_configuration(settings, env_file)
    found += await checks.check_database(settings)
    found += await checks.check_telegram(settings, SystemClock().now())
    found += checks.check_data_folder(settings)
    found += checks.check_scripts_folder(settings)
    found += checks.check_secrets(settings)
    return found


def report(found: list[Finding]) -> str:
    """The report: one line per finding, the fix under each problem, a verdict."""
    area = {f.area: t(f"doctor.area.{f.area.replace(' ', '_')}") for f in found}
    mark = {f.mark: t(f"doctor.mark.{f.mark}") for f in found}
    columns = max(width(a) for a in area.values())
    marks = max(width(m) for m in mark.values())
    lines = [t("doctor.title", version=VERSION)]
    for f in found:
        lines.append(f"  {ljust(mark[f.mark], max(marks, 4))}  {ljust(area[f.area], columns)}"
                     f"  {f.text}")
        if f.problem and f.fix:
            lines.append(f"  {'':<{max(marks, 4)}}  {'':<{columns}}  -> {f.fix}")
    problems = sum(f.problem for f in found)
    notes = sum(f.note for f in found)
    if problems:
        lines.append(t("doctor.verdict_problems", problems=problems, notes=notes))
    else:
        lines.append(t("doctor.verdict_ready", notes=notes))
    return "\n".join(lines)


async def run_doctor(settings: Settings, args: argparse.Namespace) -> int:
    env_file = args.env_file
    if env_file is None and DEFAULT_ENV_FILE.is_file():  # noqa: ASYNC240 - one stat at start
        env_file = DEFAULT_ENV_FILE
    found = await diagnose(settings, env_file)
    print(report(found))
    sys.stdout.flush()
    return 1 if any(f.problem for f in found) else 0


def add_commands(sub: Any) -> None:
    sub.add_parser(
        "doctor", help="check the settings, database, Telegram, files and secrets; "
                       "say what to fix (exit 1 on a problem)"
    ).set_defaults(run=run_doctor)
