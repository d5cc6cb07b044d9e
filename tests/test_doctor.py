"""``carebot doctor`` (issue 20, point 2): one report of what would stop carebot or leave it
half-working, with what to do, and a non-zero exit code on any problem."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from bot.cli import checks, doctor
from bot.config import Settings
from db.models import Staff, StaffRole
from db.setup import close_database, open_database
from tests.conftest import make_settings
from tests.test_cli_failures import carebot, closed_port

SECRET = "s" * 43


def private_copy(template: Path, folder: Path) -> Path:
    """A migrated SQLite database in ``folder`` (0750, file 0640), as deploy.md makes it."""
    folder.mkdir(mode=0o750)
    os.chmod(folder, 0o750)
    path = folder / "carebot.sqlite3"
    path.write_bytes(template.read_bytes())
    os.chmod(path, 0o640)
    return path


async def test_doctor_reports_pending_migration_unreachable_telegram_open_folder(
        sqlite_template: Path, tmp_path: Path) -> None:
    """The issue's three at once: each reported with its fix, exit code 1."""
    path = private_copy(sqlite_template, tmp_path / "data")
    with sqlite3.connect(path) as conn:  # the newest migration not applied yet
        newest = conn.execute("SELECT max(name) FROM tortoise_migrations").fetchone()[0]
        conn.execute("DELETE FROM tortoise_migrations WHERE name = ?", (newest,))
    os.chmod(tmp_path / "data", 0o755)
    code, out, err = await carebot(
        tmp_path, "doctor", database_url=f"sqlite://{path}", bot_token="123456:TEST-TOKEN",
        telegram_api_url=f"http://127.0.0.1:{closed_port()}", session_secret=SECRET)
    assert code == 1, out + err
    fails = [line for line in out.splitlines() if line.lstrip().startswith("FAIL")]
    assert any(f"1 migration(s) pending: {newest}" in line for line in fails)
    assert any("cannot reach Telegram at http://127.0.0.1:" in line for line in fails)
    assert any(f"{tmp_path / 'data'} is open to every local user (0755)" in line
               for line in fails)
    assert len(fails) == 3, out
    assert "-> run: carebot migrate" in out
    assert f"-> chmod 0750 {tmp_path / 'data'}" in out
    assert out.splitlines()[-1].startswith("3 problem(s)")
    assert "TEST-TOKEN" not in out + err


async def test_doctor_on_a_ready_installation_exits_0(
        sqlite_template: Path, tmp_path: Path, emulator) -> None:  # type: ignore[no-untyped-def]
    path = private_copy(sqlite_template, tmp_path / "data")
    settings = make_settings(emulator, database_url=f"sqlite://{path}", session_secret=SECRET,
                             api_key="k" * 32, metrics_open=False)
    await open_database(settings.database_url, apply_migrations=False)
    await Staff.create(name="管理员", login="admin", role=StaffRole.ADMIN, password_hash="x")
    await close_database()
    found = await doctor.diagnose(settings, None)
    text = doctor.report(found)
    assert not [f for f in found if f.problem], text
    assert f"@{emulator.bot_username} answers at {emulator.api_url}" in text
    assert "polling (no webhook)" in text
    assert "1 admin account(s) can sign in" in text
    assert text.splitlines()[-1].startswith("ready: no problems")
    assert SECRET not in text and "k" * 32 not in text


async def test_doctor_names_a_webhook_telegram_does_not_use(emulator) -> None:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings(emulator, webhook_url="https://care.example.com")
    found = await checks.check_telegram(settings, datetime(2026, 12, 4, tzinfo=UTC))
    wrong = [f for f in found if f.problem]
    assert len(wrong) == 1
    assert wrong[0].text == ("Telegram sends updates to nobody (polling), the settings say "
                             "https://care.example.com/telegram/webhook")


def test_doctor_lints_the_env_file(tmp_path: Path) -> None:
    env = tmp_path / "carebot.env"
    env.write_text("export CAREBOT_DEALER_NAME=星辰\nCAREBOT_WEBHOOK_SECERT=abc\n"
                   "CAREBOT_LANGUAGE=zh_CN\n", encoding="utf-8")
    os.chmod(env, 0o644)
    settings = Settings(_env_file=None, bot_token="1:x")
    found = checks.check_configuration(settings, env)
    texts = [f.text for f in found]
    assert f"{env} line 1: 'export CAREBOT_DEALER_NAME' is not a variable name; systemd " \
           "ignores it" in texts
    assert ("CAREBOT_WEBHOOK_SECERT is not a carebot setting (did you mean "
            "CAREBOT_WEBHOOK_SECRET?); it is ignored") in texts
    assert not [t for t in texts if "CAREBOT_LANGUAGE" in t]  # the command's, not ignored
    problems = [f for f in found if f.problem]
    assert [f.fix for f in problems] == [f"chmod 0640 {env} (owner root, group carebot)"]


def test_doctor_checks_the_console_secrets() -> None:
    found = checks.check_secrets(Settings(_env_file=None, session_secret="short",
                                          api_key="tiny"))
    assert [f.text for f in found if f.problem] == [
        "CAREBOT_SESSION_SECRET is 5 characters (at least 32)",
        "CAREBOT_API_KEY has 4 characters (at least 24)"]


def test_doctor_fails_a_scripts_folder_anyone_can_change(tmp_path: Path) -> None:
    """What owners are sent must not be every local user's to rewrite (issue 20 point 2)."""
    folder = tmp_path / "scripts"
    (folder / "zh_CN").mkdir(parents=True)
    os.chmod(folder, 0o755)
    os.chmod(folder / "zh_CN", 0o755)
    settings = Settings(_env_file=None, scripts_dir=folder)
    assert not [f for f in checks.check_scripts_folder(settings) if f.problem]
    os.chmod(folder / "zh_CN", 0o777)
    [found] = checks.check_scripts_folder(settings)
    assert found.problem and found.fix == f"chmod -R o-w {folder}"
    assert found.text == (f"1 file(s) or folder(s) in {folder} can be changed by every local "
                          f"user (first: {folder / 'zh_CN'}), and they decide what owners are "
                          "sent")
