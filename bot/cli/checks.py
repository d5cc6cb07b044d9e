"""The checks ``carebot doctor`` runs, each returning findings: what it found and, for a
problem, what to do. Nothing here changes anything (the SQLite file is not even created),
and nothing found is printed with a secret in it."""

from __future__ import annotations

import difflib
import os
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from telegram import Bot, WebhookInfo

from bot import envfile
from bot.cli.reach import (
    DATABASE_ERRORS,
    TELEGRAM_ERRORS,
    database_problem,
    make_bot,
    telegram_problem,
)
from bot.cli.say import LANGUAGE_VARIABLES, t
from bot.config import Settings, mask_url
from bot.script_check import check_scripts, feature_samples, script_dirs
from db.models import Staff, StaffRole
from db.setup import close_database, open_database, pending_migrations, sqlite_path

MIN_SECRET = 32  # characters of a random secret (token_urlsafe(32) gives 43)
MIN_API_KEY = 24
WEBHOOK_BACKLOG = 100  # pending updates at Telegram worth a word
RECENT_ERROR = timedelta(hours=24)  # a webhook error older than this is history
# Not settings, yet carebot's: the test suite's, and the command's language (bot/cli/say.py).
NOT_SETTINGS = {"CAREBOT_TEST_POSTGRES_URL", "CAREBOT_REQUIRE_BROWSER", *LANGUAGE_VARIABLES[:1]}


@dataclass(frozen=True)
class Finding:
    """One line of the report: ``ok`` (all well), a ``problem`` (exit code 1), or a note."""

    area: str
    text: str
    fix: str = ""
    problem: bool = False
    note: bool = False

    @property
    def mark(self) -> str:
        return "FAIL" if self.problem else "note" if self.note else "ok"


def _fail(area: str, text: str, fix: str) -> Finding:
    return Finding(area, text, fix, problem=True)


def _world_bits(path: Path) -> int:
    return path.stat().st_mode & 0o007


# ----------------------------------------------------------------------- configuration

def check_configuration(settings: Settings, env_file: Path | None) -> list[Finding]:
    """The settings loaded (or main would have stopped); the env file as systemd sees it."""
    area = "configuration"
    out: list[Finding] = []
    names = {f"CAREBOT_{name.upper()}" for name in Settings.model_fields}
    given = {k for k in os.environ if k.startswith("CAREBOT_")}
    if env_file is not None and env_file.is_file():
        parsed = envfile.read(env_file)
        given |= {k for k in parsed.values if k.startswith("CAREBOT_")}
        out.append(Finding(area, t("doctor.env_read", file=env_file)))
        for line, why in parsed.ignored:
            out.append(Finding(area, t("doctor.env_ignored", file=env_file, line=line, why=why),
                               note=True))
        if _world_bits(env_file):
            out.append(_fail(area, t("doctor.env_readable", file=env_file),
                             t("doctor.env_readable_fix", file=env_file)))
    for name in sorted(given - names - NOT_SETTINGS):
        close = difflib.get_close_matches(name, sorted(names), n=1)
        hint = t("doctor.did_you_mean", name=close[0]) if close else ""
        out.append(Finding(area, t("doctor.not_a_setting", name=name, hint=hint), note=True))
    if not settings.has_token:
        out.append(_fail(area, t("doctor.no_token"), t("doctor.no_token_fix")))
    if not any(f.problem for f in out):
        out.append(Finding(area, t("doctor.settings_valid", n=len(given & names))))
    return out


# ----------------------------------------------------------------------------- database

async def check_database(settings: Settings) -> list[Finding]:
    """Reachable, migrated, and with a console admin who can sign in."""
    area = "database"
    url = settings.database_url
    path = sqlite_path(url)
    if path is not None and not Path(path).is_file():  # noqa: ASYNC240 - one stat, in a check
        return [_fail(area, t("doctor.no_sqlite_file", path=path), t("doctor.run_migrate"))]
    try:
        pending = await pending_migrations(url)
    except DATABASE_ERRORS as exc:
        return [_fail(area, database_problem(exc, url), t("doctor.fix_then_doctor"))]
    out = [Finding(area, t("doctor.database_answers", url=mask_url(url)))]
    if pending:
        out.append(_fail(area, t("doctor.pending", n=len(pending), names=", ".join(pending)),
                         t("doctor.pending_fix")))
        return out
    out.append(Finding(area, t("doctor.schema_ok")))
    out += await _admins(settings)
    return out


async def _admins(settings: Settings) -> list[Finding]:
    try:
        await open_database(settings.database_url, apply_migrations=False)
        admins = await Staff.filter(role=StaffRole.ADMIN, active=True,
                                    password_hash__not_isnull=True).count()
    except DATABASE_ERRORS as exc:
        return [_fail("console", database_problem(exc, settings.database_url), "")]
    finally:
        await close_database()
    if admins:
        return [Finding("console", t("doctor.admins", n=admins))]
    return [_fail("console", t("doctor.no_admin"), t("doctor.no_admin_fix"))]


# ----------------------------------------------------------------------------- telegram

async def check_telegram(settings: Settings, now: datetime) -> list[Finding]:
    """getMe and getWebhookInfo, through PTB over HTTP as the service calls them; ``now``
    dates Telegram's last webhook error."""
    if not settings.has_token:
        return []  # said under configuration
    bot = make_bot(settings)
    try:
        await bot.initialize()  # getMe
        info = await bot.get_webhook_info()
    except TELEGRAM_ERRORS as exc:
        return [_fail("telegram", telegram_problem(exc, settings), t("doctor.telegram_fix"))]
    finally:
        await bot.shutdown()
    return [Finding("telegram", t("doctor.telegram_answers", username=bot.username,
                                  url=settings.telegram_api_url)),
            *_webhook_findings(settings, bot, info, now)]


def _webhook_findings(settings: Settings, bot: Bot, info: WebhookInfo,
                      now: datetime) -> list[Finding]:
    area = "telegram"
    out: list[Finding] = []
    want = settings.webhook_endpoint
    if want and info.url != want:
        out.append(_fail(area, t("doctor.webhook_elsewhere",
                                 url=info.url or t("doctor.nobody_polling"), want=want),
                         t("doctor.webhook_elsewhere_fix")))
    elif not want and info.url:
        out.append(Finding(area, t("doctor.webhook_while_polling", url=info.url), note=True))
    else:
        out.append(Finding(area, t("doctor.webhook", url=info.url) if info.url
                           else t("doctor.polling")))
    pending = info.pending_update_count
    if pending > WEBHOOK_BACKLOG:
        out.append(Finding(area, t("doctor.backlog", n=pending), note=True))
    when = info.last_error_date
    if info.last_error_message and when is not None:
        age = now - when
        line = t("doctor.webhook_error", when=f"{when:%Y-%m-%d %H:%M}",
                 error=info.last_error_message)
        if age < RECENT_ERROR:
            out.append(_fail(area, line, t("doctor.webhook_error_fix")))
        else:
            out.append(Finding(area, line, note=True))
    return out


# ------------------------------------------------------------------------ files, secrets

def check_data_folder(settings: Settings) -> list[Finding]:
    """The SQLite folder and files: private to carebot (owners' data) and writable by it."""
    area = "data folder"
    path = sqlite_path(settings.database_url)
    if path is None:
        return [Finding(area, t("doctor.postgres_no_files"))]
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        return [_fail(area, t("doctor.no_folder", folder=folder),
                      t("doctor.no_folder_fix", folder=folder))]
    out: list[Finding] = []
    mode = stat.S_IMODE(folder.stat().st_mode)
    if mode & 0o007:
        out.append(_fail(area, t("doctor.folder_open", folder=folder, mode=f"{mode:04o}"),
                         f"chmod 0750 {folder}"))
    for file in sorted(folder.glob(Path(path).name + "*")):
        fmode = stat.S_IMODE(file.stat().st_mode)
        if fmode & 0o007:
            out.append(_fail(area, t("doctor.file_open", file=file, mode=f"{fmode:04o}"),
                             f"chmod 0640 {file}"))
    if not os.access(folder, os.W_OK):
        out.append(_fail(area, t("doctor.folder_not_writable", folder=folder),
                         f"chown carebot:carebot {folder}"))
    if not out:
        out.append(Finding(area, t("doctor.folder_private", folder=folder, mode=f"{mode:04o}")))
    if os.geteuid() == 0:
        out.append(Finding(area, t("doctor.as_root"), note=True))
    return out


def check_scripts_folder(settings: Settings) -> list[Finding]:
    """The dealership's own scripts: there, writable by no other local user, and every one
    renders."""
    area = "scripts"
    if settings.scripts_dir is None:
        return [Finding(area, t("doctor.builtin_scripts"))]
    folder = Path(settings.scripts_dir)
    if not folder.is_dir():
        return [_fail(area, t("doctor.scripts_not_folder", folder=folder),
                      t("doctor.scripts_not_folder_fix"))]
    # what owners are sent: changed by anyone on the machine, it is anyone's message
    open_ = [p for p in (folder, *sorted(folder.rglob("*")))
             if not p.is_symlink() and p.stat().st_mode & 0o002]
    if open_:
        return [_fail(area, t("doctor.scripts_open", n=len(open_), folder=folder,
                              first=open_[0]), f"chmod -R o-w {folder}")]
    checked, problems = check_scripts(script_dirs(settings), feature_samples())
    if problems:
        return [_fail(area, t("doctor.script_problems", n=len(problems), first=problems[0]),
                      t("doctor.script_problems_fix"))]
    return [Finding(area, t("doctor.scripts_ok", folder=folder, n=checked))]


def check_secrets(settings: Settings) -> list[Finding]:
    """The console's cookie key and the API's key: set, long, random (never shown)."""
    area = "console"
    out: list[Finding] = []
    make = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
    secret = settings.session_secret
    if len(secret) < MIN_SECRET:
        what = t("doctor.secret_empty") if not secret \
            else t("doctor.secret_short", n=len(secret), min=MIN_SECRET)
        out.append(_fail(area, t("doctor.session_secret", what=what),
                         t("doctor.session_secret_fix", make=make)))
    if settings.api_key and len(settings.api_key) < MIN_API_KEY:
        out.append(_fail(area, t("doctor.api_key_short", n=len(settings.api_key),
                                 min=MIN_API_KEY), t("doctor.api_key_fix", make=make)))
    if settings.webhook_url.startswith("https://") and not settings.console_secure_cookie:
        out.append(Finding(area, t("doctor.insecure_cookie"), note=True))
    if settings.metrics_open and not settings.metrics_token:
        out.append(Finding(area, t("doctor.metrics_open"), note=True))
    return out or [Finding(area, t("doctor.secrets_set_api") if settings.api_key
                           else t("doctor.secrets_set"))]
