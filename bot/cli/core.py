"""The ``carebot`` command: run, sandbox, migrate, import, link."""

# (This docstring is the parser's description; each feature's subcommands are a module of
# this package, listed in FEATURE_COMMANDS.)

from __future__ import annotations

import argparse
import asyncio
import importlib
import io
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from telegram.error import BadRequest

from bot import logs
from bot.app import create_app
from bot.cli import backup, bookings, campaigns, doctor, inbox, report, tickets, touchpoints
from bot.cli.database import database
from bot.cli.helptext import CarebotParser, localize
from bot.cli.reach import DATABASE_ERRORS, database_problem, explain, open_db, telegram
from bot.cli.say import cli_language, fail, say, t
from bot.clock import SystemClock
from bot.config import ConfigError, Settings, load_settings, mask_url
from bot.intake import ImportResult, IntakeError, import_deliveries_file, import_visits_file
from bot.journeys.plans import journey_rules
from bot.owners import phone_to_e164
from bot.sandbox.scene import run_sandbox
from bot.startup import EXIT_CODE, StartupError
from bot.version import VERSION
from bot.web.console.pages.imports import shown_problems
from bot.web.console.render import Translator, load_strings
from db.models import Customer
from db.setup import close_database, migrate_database

log = logging.getLogger(__name__)


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def cmd_run(settings: Settings) -> int:
    if not settings.has_token:
        say("run.no_token")
        return await cmd_sandbox(settings)
    # one line and exit 2 when the database cannot be reached; the console's setting
    # changes are create_app's to keep (a copy taken here would hide the environment's)
    await open_db(settings, console_changes=False)
    carebot = create_app(settings)
    try:  # Telegram unreachable, the web port taken: one line, exit 2 (main)
        try:
            await carebot.start()
        except BadRequest as exc:  # setWebhook refused: the one start-up call that can be
            raise StartupError(t("run.webhook_refused", why=exc.message)) from exc
        me = carebot.application.bot
        how = t("run.webhook", url=settings.webhook_url) if settings.webhook_url \
            else t("run.polling")
        # the log's line first: once the banner is out, both are (a stop may follow at once)
        log.info("carebot %s running as @%s (%s)", VERSION, me.username,
                 "webhook" if settings.webhook_url else "polling")
        say("run.running", username=me.username, how=how, version=VERSION,
            web=f"http://{settings.web_host}:{settings.web_port}")
        await _wait_for_signal()
    finally:
        await carebot.stop()
        await close_database()
    return 0


async def cmd_sandbox(settings: Settings) -> int:
    return await run_sandbox(settings)


async def cmd_migrate(settings: Settings) -> int:
    """Apply what is pending and say what: the journal of ``ExecStartPre`` shows it (the
    database URL's password masked, as everywhere carebot prints it)."""
    where = mask_url(settings.database_url)
    try:
        applied = await migrate_database(settings.database_url)
    except DATABASE_ERRORS as exc:
        raise StartupError(database_problem(exc, settings.database_url)) from exc
    if not applied:
        say("migrate.nothing", where=where, version=VERSION)
        return 0
    for name in applied:
        say("migrate.applied", name=name)
    say("migrate.done", n=len(applied), where=where, version=VERSION)
    return 0


async def cmd_import(settings: Settings, what: str, path: Path) -> int:
    importers = {"deliveries": import_deliveries_file, "visits": import_visits_file}
    if what not in importers:
        fail("import", "import.unknown_kind", kind=repr(what))
        return 2
    await open_db(settings)
    try:
        result = await importers[what](
            path, rules=journey_rules(settings), now=SystemClock().now()
        )
    except IntakeError as exc:
        fail("import", "import.refused", why=exc)
        return 1
    finally:
        await close_database()
    print(import_summary(result))
    return 1 if result.errors else 0


IMPORT_LIMIT = 50  # problems listed of each kind; the rest counted


def import_summary(result: ImportResult) -> str:
    """What an import did, in the CLI's language; each problem with the console's words
    for it (its catalogue of import problems and column names)."""
    console_t = Translator(load_strings(), cli_language())
    lines = [t("import.summary", total=result.total, created=result.created,
               updated=result.updated, unchanged=result.unchanged, failed=result.failed)
             + (t("import.superseded", n=result.superseded) if result.superseded else "")]
    for key, items in (("import.errors", result.errors), ("import.warnings", result.warnings)):
        if not items:
            continue
        lines.append(t(key, n=len(items)))
        for p in shown_problems([i.to_dict() for i in items[:IMPORT_LIMIT]], console_t):
            lines.append(t("import.problem", row=p["row"], field=p["field"],
                           message=p["message"]))
        if len(items) > IMPORT_LIMIT:
            lines.append(t("import.more", n=len(items) - IMPORT_LIMIT))
    return "\n".join(lines)


async def cmd_link(settings: Settings, phone: str) -> int:
    """An owner's deep link; the number read as the import reads it (default region first)."""
    e164 = phone_to_e164(phone)
    if e164 is None:
        fail("link", "link.not_a_phone", phone=repr(phone))
        return 1
    async with database(settings):
        customer = await Customer.get_or_none(phone=e164)
    if customer is None:
        fail("link", "link.no_owner", phone=e164)
        return 1
    username = "<your_bot>"
    if settings.has_token:
        async with telegram(settings) as bot:  # unreachable: one line, exit 2
            username = bot.username
    print(f"{customer.name} {customer.phone}: https://t.me/{username}?start={customer.link_token}")
    return 0


class Commands(Protocol):
    """A feature's subcommands: ``add_commands(sub)`` adds parsers with
    ``set_defaults(run=<async fn(settings, args)>)``."""

    def add_commands(self, sub: Any) -> None: ...


FEATURE_COMMANDS: tuple[Commands, ...] = (tickets, report, touchpoints, campaigns, inbox,
                                          bookings, doctor, backup)
# ``carebot bench`` comes from the benchmark suite beside ``bot`` in a source checkout; an
# installed wheel does not ship it. The one place ``bot`` imports ``benchmarks``.
CHECKOUT = Path(__file__).resolve().parents[2]  # bot/cli/core.py -> the checkout


def _add_bench(sub: Any, checkout: Path = CHECKOUT) -> None:
    if not ((checkout / "pyproject.toml").is_file()
            and (checkout / "benchmarks" / "__init__.py").is_file()):
        # Every word after ``bench`` is taken as is (no option is known here), so any
        # ``carebot bench …`` gets the explanation rather than a usage error.
        stub = sub.add_parser("bench", help="run the benchmarks (from a source checkout)",
                              add_help=False, prefix_chars="\0")
        stub.add_argument("words", nargs="*")
        stub.set_defaults(run=_no_benchmarks)
        return
    if str(checkout) not in sys.path:  # an editable install's ``carebot`` maps bot and db only
        sys.path.append(str(checkout))
    importlib.import_module("benchmarks.cli").add_commands(sub)


async def _no_benchmarks(settings: Settings, args: argparse.Namespace) -> int:
    fail("bench", "bench.no_checkout")
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = CarebotParser(prog="carebot", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"carebot {VERSION}")
    parser.add_argument(
        "--env-file", type=Path, default=None, metavar="PATH",
        help="read settings from this file as systemd's EnvironmentFile= does (default: "
             ".env here, if any); the environment still wins")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "run", help="run the bot, scheduler and web (the sandbox if no token)"
    ).set_defaults(run=lambda s, a: cmd_run(s))
    sub.add_parser(
        "sandbox", help="run against a local Telegram emulator with demo owners"
    ).set_defaults(run=lambda s, a: cmd_sandbox(s))
    sub.add_parser("migrate", help="apply database migrations").set_defaults(
        run=lambda s, a: cmd_migrate(s)
    )
    imp = sub.add_parser("import", help="import deliveries or workshop visits from CSV/XLSX")
    imp.add_argument("what", choices=["deliveries", "visits"])
    imp.add_argument("file", type=Path)
    imp.set_defaults(run=lambda s, a: cmd_import(s, a.what, a.file))
    link = sub.add_parser("link", help="print an owner's personal deep link")
    link.add_argument("phone")
    link.set_defaults(run=lambda s, a: cmd_link(s, a.phone))
    _add_bench(sub)
    for feature in FEATURE_COMMANDS:
        feature.add_commands(sub)
    return localize(parser)


def _settings(env_file: Path | None) -> Settings:
    """The settings from the environment and the env file (``--env-file``, else ``.env``
    here when there is one), both read as systemd reads them."""
    if env_file is None:
        return load_settings()
    if not env_file.is_file():
        raise ConfigError(t("core.no_env_file", path=env_file))
    return load_settings(_env_file=env_file)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. What stops it before it can work (a wrong setting, the database or
    Telegram unreachable, a port taken) is one line on stderr and exit code 2."""
    args = build_parser().parse_args(argv)
    # Under systemd stdout is a pipe, block-buffered: "carebot is running as @bot" reached the
    # journal only at exit. Line-buffered, each line is there when it is printed.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    logs.setup("text", verbose=args.verbose)  # until the settings say which format
    settings: Settings | None = None
    try:
        settings = _settings(args.env_file)
        logs.setup(settings.log_format, verbose=args.verbose)  # CAREBOT_LOG_FORMAT
        return int(asyncio.run(args.run(settings, args)))
    except StartupError as exc:
        return _stopped(args, str(exc), exc)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a dependency's failure that got this far, said in one line
        why = explain(exc, settings) if settings is not None else None
        if why is None:
            raise
        return _stopped(args, why, exc)


def _stopped(args: argparse.Namespace, line: str, exc: BaseException) -> int:
    print(f"carebot {args.command}: {line}", file=sys.stderr)
    if args.verbose:
        log.debug("what stopped it", exc_info=exc)
    return EXIT_CODE
