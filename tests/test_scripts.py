"""Scripts for every touchpoint in every language, ``carebot scripts check`` and
``carebot outbox``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import build_parser
from bot.cli.touchpoints import find_customer, format_counts, outbox_counts, timeline
from bot.intake import import_deliveries_file
from bot.journeys.plans import FOLLOWUP_3D, journey_rules
from bot.script_check import SAMPLE_PAYLOADS, check_scripts
from bot.texts import LANGUAGES, PACKAGED, Scripts
from db.models import Touchpoint, TouchpointStatus
from tests.conftest import make_settings
from tests.test_walking_skeleton import SH, VIN_A, delivery_row, local, write_csv

KINDS = sorted(SAMPLE_PAYLOADS)
REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_touchpoint_has_a_script_in_every_language(kind: str, lang: str) -> None:
    assert (PACKAGED / lang / f"{kind}.html").is_file()


def test_scripts_greet_by_name_say_who_writes_and_give_the_phone() -> None:
    from bot.script_check import _sample_customer, _sample_vehicle

    scripts = Scripts()
    for lang in LANGUAGES:
        for kind in KINDS:
            text = scripts.render(kind, lang, customer=_sample_customer(lang),
                                  vehicle=_sample_vehicle(),
                                  dealer={"name": "星辰汽车", "phone": "020-88886666"},
                                  payload=SAMPLE_PAYLOADS[kind])
            assert text.startswith(("王伟您好", "Hello 王伟")), (kind, lang)
            assert "星辰汽车" in text and "020-88886666" in text, (kind, lang)


def test_packaged_scripts_pass_the_check() -> None:
    checked, problems = check_scripts([PACKAGED])
    assert problems == []
    assert checked >= 2 * len(KINDS)


def test_check_names_file_and_line_of_every_broken_script(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "zh_CN").mkdir()
    (tmp_path / "en" / "birthday.html").write_text(
        "Hello {{ customer.name }}\n\n{{ payload.nothing_like_this }}\n", encoding="utf-8")
    (tmp_path / "zh_CN" / "holiday.html").write_text(
        "{{ customer.name }}您好\n{% if payload.name %}\n", encoding="utf-8")
    (tmp_path / "zh_CN" / "insurance_expiry.html").write_text(
        "{{ customer.name }} {{ vehicle.plate }}\n", encoding="utf-8")  # vehicle may be None
    (tmp_path / "en" / "a.toml").write_text('my_button = "Book"\n', encoding="utf-8")
    (tmp_path / "en" / "extra.toml").write_text('my_button = "Book"\n', encoding="utf-8")
    _, problems = check_scripts([PACKAGED, tmp_path])
    found = {(p.path.name, p.line) for p in problems}
    assert ("birthday.html", 3) in found
    assert ("holiday.html", 2) in found
    assert ("insurance_expiry.html", 1) in found
    assert any(p.path.name == "extra.toml" and "also in a.toml" in p.message for p in problems)
    assert all(str(p).startswith(str(tmp_path)) for p in problems)


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBOT_")}
    env.update({"CAREBOT_DATABASE_URL": f"sqlite://{tmp_path}/cli.sqlite3",
                "CAREBOT_LANGUAGE": "en", **extra})
    return env


def test_scripts_check_command_fails_on_a_broken_override(tmp_path: Path) -> None:
    ok = run_cli("scripts", "check", env=cli_env(tmp_path))
    assert ok.returncode == 0 and "files OK" in ok.stdout
    override = tmp_path / "mine"
    (override / "zh_CN").mkdir(parents=True)
    (override / "zh_CN" / "visit_7d.html").write_text("{{ customer.nmae }}\n", encoding="utf-8")
    bad = run_cli("scripts", "check", env=cli_env(tmp_path, CAREBOT_SCRIPTS_DIR=str(override)))
    assert bad.returncode == 1
    assert f"{override}/zh_CN/visit_7d.html:1: UndefinedError" in bad.stderr


def test_outbox_command_counts_and_timeline(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    csv = write_csv(tmp_path / "d.csv", [delivery_row(VIN_A, "13800138000", "2020-11-03 10:00")])
    assert run_cli("import", "deliveries", str(csv), env=env).returncode == 0
    counts = run_cli("outbox", "--from", "2020-11-01", "--to", "2020-11-30", env=env)
    assert counts.returncode == 0, counts.stderr
    lines = counts.stdout.splitlines()
    assert lines[0] == "touchpoints due 2020-11-01..2020-11-30 (Asia/Shanghai)"
    row = next(line for line in lines if line.startswith("followup_3d"))
    parts = row.split()  # pending first, the total last
    assert parts[1] == "1" and parts[-1] == "1" and set(parts[2:-1]) == {"0"}
    person = run_cli("outbox", "--customer", "138 0013 8000", env=env)
    assert person.returncode == 0, person.stderr
    assert "张伟 +8613800138000" in person.stdout and "first_service_reminder" in person.stdout
    by_vin = run_cli("outbox", "--customer", VIN_A.lower(), env=env)
    assert by_vin.stdout == person.stdout
    missing = run_cli("outbox", "--customer", "13900000000", env=env)
    assert missing.returncode == 1 and "no owner" in missing.stderr


def test_cli_knows_the_new_commands() -> None:
    parser = build_parser()
    assert parser.parse_args(["import", "visits", "v.csv"]).what == "visits"
    assert parser.parse_args(["outbox", "--customer", "x"]).customer == "x"
    assert parser.parse_args(["scripts", "check"]).scripts_command == "check"


async def test_outbox_counts_and_timeline_with_reasons(db: str, tmp_path: Path,
                                                       emulator: object) -> None:
    settings = make_settings(emulator, database_url=db)
    now = local(2026, 11, 8, 12, 0)
    csv = write_csv(tmp_path / "d.csv", [delivery_row(VIN_A, "13800138000", "2026-11-03 10:00")])
    await import_deliveries_file(csv, rules=journey_rules(settings), now=now)
    await Touchpoint.filter(kind=FOLLOWUP_3D).update(status=TouchpointStatus.SKIPPED,
                                                     status_reason="owner declined follow-ups")
    start, end = local(2026, 11, 1, 0, 0), local(2026, 12, 1, 0, 0)
    rows = await outbox_counts(start, end)
    assert ("followup_3d", "skipped", 1) in rows and ("visit_7d", "pending", 1) in rows
    table = format_counts(rows)
    assert table.splitlines()[-1].split()[-1] == "4"
    customer = await find_customer("+86 138-0013-8000")
    assert customer is not None
    lines = await timeline(customer.id, SH)
    followup = next(line for line in lines if "followup_3d" in line)
    assert "2026-11-06 10:00" in followup and "owner declined follow-ups" in followup
