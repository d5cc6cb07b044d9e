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
from bot.cli.say import LANGUAGE_VARIABLES
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
        out.append(Finding(area, f"{env_file} read as systemd's EnvironmentFile= reads it"))
        for line, why in parsed.ignored:
            out.append(Finding(area, f"{env_file} line {line}: {why}; systemd ignores it",
                               note=True))
        if _world_bits(env_file):
            out.append(_fail(area, f"{env_file} is readable by every local user and holds "
                             "secrets", f"chmod 0640 {env_file} (owner root, group carebot)"))
    for name in sorted(given - names - NOT_SETTINGS):
        close = difflib.get_close_matches(name, sorted(names), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        out.append(Finding(area, f"{name} is not a carebot setting{hint}; it is ignored",
                           note=True))
    if not settings.has_token:
        out.append(_fail(area, "CAREBOT_BOT_TOKEN is empty: carebot run starts the sandbox, "
                         "not the bot", "set CAREBOT_BOT_TOKEN to the token from @BotFather"))
    if not any(f.problem for f in out):
        out.append(Finding(area, f"settings valid ({len(given & names)} CAREBOT_ variables "
                           "set, the rest default)"))
    return out


# ----------------------------------------------------------------------------- database

async def check_database(settings: Settings) -> list[Finding]:
    """Reachable, migrated, and with a console admin who can sign in."""
    area = "database"
    url = settings.database_url
    path = sqlite_path(url)
    if path is not None and not Path(path).is_file():  # noqa: ASYNC240 - one stat, in a check
        return [_fail(area, f"the SQLite file {path} does not exist yet",
                      "run: carebot migrate (it creates it)")]
    try:
        pending = await pending_migrations(url)
    except DATABASE_ERRORS as exc:
        return [_fail(area, database_problem(exc, url), "fix it, then run carebot doctor")]
    out = [Finding(area, f"{mask_url(url)} answers")]
    if pending:
        out.append(_fail(area, f"{len(pending)} migration(s) pending: {', '.join(pending)}",
                         "run: carebot migrate (back up first, docs/deploy.md)"))
        return out
    out.append(Finding(area, "schema up to date"))
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
        return [Finding("console", f"{admins} admin account(s) can sign in")]
    return [_fail("console", "no admin account can sign in to the console",
                  "carebot staff add --login admin --name 管理员 --role admin, then "
                  "carebot staff passwd admin")]


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
        return [_fail("telegram", telegram_problem(exc, settings),
                      "carebot cannot send or receive until this is fixed")]
    finally:
        await bot.shutdown()
    return [Finding("telegram", f"@{bot.username} answers at {settings.telegram_api_url}"),
            *_webhook_findings(settings, bot, info, now)]


def _webhook_findings(settings: Settings, bot: Bot, info: WebhookInfo,
                      now: datetime) -> list[Finding]:
    area = "telegram"
    out: list[Finding] = []
    want = settings.webhook_endpoint
    if want and info.url != want:
        out.append(_fail(area, f"Telegram sends updates to {info.url or 'nobody (polling)'}, "
                         f"the settings say {want}",
                         "restart carebot (it sets the webhook at start); check "
                         "CAREBOT_WEBHOOK_URL"))
    elif not want and info.url:
        out.append(Finding(area, f"a webhook is set ({info.url}) while these settings poll: "
                           "carebot run removes it when it starts", note=True))
    else:
        out.append(Finding(area, f"webhook {info.url}" if info.url else "polling (no webhook)"))
    pending = info.pending_update_count
    if pending > WEBHOOK_BACKLOG:
        out.append(Finding(area, f"{pending} updates wait at Telegram (is carebot running?)",
                           note=True))
    when = info.last_error_date
    if info.last_error_message and when is not None:
        age = now - when
        line = (f"Telegram's last webhook error, {when:%Y-%m-%d %H:%M} UTC: "
                f"{info.last_error_message}")
        if age < RECENT_ERROR:
            out.append(_fail(area, line, "check nginx, the certificate and that carebot "
                             "answers on CAREBOT_WEB_PORT (docs/deploy.md)"))
        else:
            out.append(Finding(area, line, note=True))
    return out


# ------------------------------------------------------------------------ files, secrets

def check_data_folder(settings: Settings) -> list[Finding]:
    """The SQLite folder and files: private to carebot (owners' data) and writable by it."""
    area = "data folder"
    path = sqlite_path(settings.database_url)
    if path is None:
        return [Finding(area, "PostgreSQL: no local data files to check")]
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        return [_fail(area, f"{folder} does not exist", "run: carebot migrate (it creates "
                      "it), or install -d -o carebot -g carebot -m 0750 " + str(folder))]
    out: list[Finding] = []
    mode = stat.S_IMODE(folder.stat().st_mode)
    if mode & 0o007:
        out.append(_fail(area, f"{folder} is open to every local user ({mode:04o}) and holds "
                         "owners' data", f"chmod 0750 {folder}"))
    for file in sorted(folder.glob(Path(path).name + "*")):
        fmode = stat.S_IMODE(file.stat().st_mode)
        if fmode & 0o007:
            out.append(_fail(area, f"{file} is readable by every local user ({fmode:04o})",
                             f"chmod 0640 {file}"))
    if not os.access(folder, os.W_OK):
        out.append(_fail(area, f"{folder} is not writable by this user (SQLite writes its "
                         "journal there)", f"chown carebot:carebot {folder}"))
    if not out:
        out.append(Finding(area, f"{folder} is private ({mode:04o})"))
    if os.geteuid() == 0:
        out.append(Finding(area, "run as root: runuser -u carebot -- carebot doctor gives the "
                           "service's view of the permissions", note=True))
    return out


def check_scripts_folder(settings: Settings) -> list[Finding]:
    """The dealership's own scripts: there, readable, and every one renders."""
    area = "scripts"
    if settings.scripts_dir is None:
        return [Finding(area, "the built-in scripts (no CAREBOT_SCRIPTS_DIR)")]
    folder = Path(settings.scripts_dir)
    if not folder.is_dir():
        return [_fail(area, f"CAREBOT_SCRIPTS_DIR {folder} is not a folder",
                      "create it (with zh_CN/ and en/) or fix CAREBOT_SCRIPTS_DIR")]
    checked, problems = check_scripts(script_dirs(settings), feature_samples())
    if problems:
        return [_fail(area, f"{len(problems)} script problem(s), first: {problems[0]}",
                      "run: carebot scripts check (every problem, with its line)")]
    return [Finding(area, f"{folder}: {checked} files render")]


def check_secrets(settings: Settings) -> list[Finding]:
    """The console's cookie key and the API's key: set, long, random (never shown)."""
    area = "console"
    out: list[Finding] = []
    make = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
    secret = settings.session_secret
    if len(secret) < MIN_SECRET:
        what = "empty (sessions end at every restart, and span no instances)" if not secret \
            else f"{len(secret)} characters (at least {MIN_SECRET})"
        out.append(_fail(area, f"CAREBOT_SESSION_SECRET is {what}",
                         f"set it to the output of {make}, the same on every instance"))
    if settings.api_key and len(settings.api_key) < MIN_API_KEY:
        out.append(_fail(area, f"CAREBOT_API_KEY has {len(settings.api_key)} characters "
                         f"(at least {MIN_API_KEY})", f"set it to the output of {make}"))
    if settings.webhook_url.startswith("https://") and not settings.console_secure_cookie:
        out.append(Finding(area, "the console is behind HTTPS but its cookie may travel over "
                           "HTTP: set CAREBOT_CONSOLE_SECURE_COOKIE=true", note=True))
    if settings.metrics_open and not settings.metrics_token:
        out.append(Finding(area, "/metrics answers anyone (CAREBOT_METRICS_OPEN=true): keep "
                           "the port private", note=True))
    return out or [Finding(area, "CAREBOT_SESSION_SECRET set"
                           + (", CAREBOT_API_KEY set" if settings.api_key else ""))]
