"""Failures speak plainly (issue 18, point 7; issue 20, points 1 and 5): a command that cannot
reach the database or Telegram, or whose settings are wrong, says so in one line naming it
and exits with code 2, no traceback; ``carebot migrate`` says what it applied and never
prints a password; ``carebot link`` reads a number as the import does.

The commands run as real processes (``python -m bot.cli``), as an operator or systemd runs
them: what is checked is exactly what lands in the terminal or the journal."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from bot.cli import build_parser, main
from bot.config import Settings
from bot.startup import StartupError
from db.models import Customer

ROOT = Path(__file__).resolve().parent.parent


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(**settings: str) -> dict[str, str]:
    """This environment without any CAREBOT_ setting of the developer's, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBOT_")}
    env["PYTHONPATH"] = str(ROOT)
    env["CAREBOT_LANGUAGE"] = "en"  # the words these tests read (tests/test_cli_language.py: zh_CN)
    env.update({f"CAREBOT_{k.upper()}": v for k, v in settings.items()})
    return env


async def carebot(cwd: Path, *args: str, **settings: str) -> tuple[int, str, str]:
    """Run ``carebot ARGS`` in ``cwd``; (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, cwd=cwd, env=child_env(**settings),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
    return proc.returncode or 0, out.decode(), err.decode()


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{err}"
    assert "Traceback" not in err
    return lines[0]


async def test_link_with_telegram_unreachable_is_one_line_exit_2(db: str, tmp_path: Path
                                                                 ) -> None:
    await Customer.create(name="王芳", phone="+8613800138000", link_token="tok-wang")
    code, out, err = await carebot(
        tmp_path, "link", "13800138000", database_url=db, bot_token="123456:TEST-TOKEN",
        telegram_api_url=f"http://127.0.0.1:{closed_port()}")
    line = one_line(err)
    assert code == 2 and out == ""
    assert line.startswith("carebot link: cannot reach Telegram at http://127.0.0.1:")
    assert "CAREBOT_TELEGRAM_API_URL" in line  # what to check
    assert "TEST-TOKEN" not in err


async def test_link_reads_an_11_digit_chinese_mobile_as_the_import_does(
        db: str, emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """15827469031 is also a valid +1 582 number: the default region (CN) wins."""
    await Customer.create(name="李雷", phone="+8615827469031", link_token="tok-li")
    code, out, err = await carebot(
        tmp_path, "link", "15827469031", database_url=db, bot_token=emulator.token,
        telegram_api_url=emulator.api_url)
    assert code == 0, err
    assert out.strip() == f"李雷 +8615827469031: https://t.me/{emulator.bot_username}" \
                          "?start=tok-li"


async def test_link_with_the_database_unreachable(tmp_path: Path) -> None:
    url = f"postgres://carebot:Sup3rSecret@127.0.0.1:{closed_port()}/carebot"
    code, out, err = await carebot(tmp_path, "link", "13800138000", database_url=url)
    line = one_line(err)
    assert code == 2
    assert "cannot use the database" in line and "connection refused" in line
    assert "CAREBOT_DATABASE_URL=postgres://carebot:***@127.0.0.1:" in line
    assert "Sup3rSecret" not in err + out


async def test_run_with_the_database_unreachable_stops_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")  # in the way: the folder cannot be made
    code, _, err = await carebot(tmp_path, "run", bot_token="123456:TEST-TOKEN",
                                 database_url=f"sqlite://{tmp_path}/a-file/in/the/way.db")
    line = one_line(err)
    assert code == 2
    assert line.startswith("carebot run: cannot use the database (the SQLite file ")


async def test_a_bad_web_host_stops_start_up_naming_it(tmp_path: Path) -> None:
    code, _, err = await carebot(tmp_path, "run", web_host="care bot.local")
    line = one_line(err)
    assert code == 2
    assert line.startswith("carebot run: CAREBOT_WEB_HOST: not an IP address or a host name")


async def test_a_trailing_comment_in_the_env_file_is_refused_with_its_name(tmp_path: Path
                                                                         ) -> None:
    """The issue's crash loop: systemd keeps '# nginx in front' as part of the host."""
    env = tmp_path / "carebot.env"
    env.write_text("CAREBOT_DEALER_NAME=星辰汽车\n"
                   "CAREBOT_API_KEY=k3y-k3y-k3y-k3y-k3y-k3y-k3y   # python3 -c ...\n"
                   "CAREBOT_WEB_HOST=127.0.0.1   # nginx in front\n", encoding="utf-8")
    code, out, err = await carebot(tmp_path, "--env-file", str(env), "migrate")
    line = one_line(err)
    assert code == 2 and out == ""
    assert "CAREBOT_WEB_HOST: the value ends in '# nginx in front'" in line
    assert "CAREBOT_API_KEY: the value ends in '# python3 -c ...'" in line
    assert "put comments on their own line" in line
    assert "k3y" not in line  # the key itself is never shown
    assert not (tmp_path / "data").exists()  # refused before anything was touched


async def test_migrate_lists_what_it_applied_then_nothing(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/carebot.sqlite3"
    code, out, _ = await carebot(tmp_path, "migrate", database_url=url)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0] == "applied 0001_initial"
    assert "applied 0013_owner_notices" in lines
    assert lines[-1].startswith(f"{len(lines) - 1} migration(s) applied: the database is up "
                                "to date")
    code, out, _ = await carebot(tmp_path, "migrate", database_url=url)
    assert code == 0
    assert out.startswith("nothing to apply: the database is up to date")


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}:{password}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc))


async def test_migrate_output_holds_no_password(db_url: str, tmp_path: Path) -> None:
    if not db_url.startswith("postgres"):
        pytest.skip("a password is PostgreSQL's (the test server trusts any)")
    url = _with_password(db_url, "Pa55-w0rd-x")
    for args in (("migrate",), ("-v", "migrate")):  # debug logging too
        code, out, err = await carebot(tmp_path, *args, database_url=url)
        assert code == 0, err
        assert "nothing to apply" in out and ":***@" in out
        assert "Pa55-w0rd-x" not in out + err


def test_start_up_refuses_a_swallowed_comment_in_a_setting() -> None:
    from bot.config import ConfigError, load_settings

    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=None, session_secret="abcdefgh # the console's key")
    assert str(err.value).startswith("CAREBOT_SESSION_SECRET: the value ends in")
    assert "abcdefgh" not in str(err.value)
    with pytest.raises(ConfigError, match="CAREBOT_DEALER_NAME: the value starts or ends"):
        load_settings(_env_file=None, dealer_name="星辰汽车 ")
    with pytest.raises(ConfigError, match="CAREBOT_DEALER_NAME: the value runs over"):
        load_settings(_env_file=None, dealer_name='星辰汽车\nCAREBOT_WEB_PORT=80"')


async def test_the_sandbox_port_taken_is_said_not_moved() -> None:
    from bot.sandbox.scene import start_emulator

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(StartupError) as err:
            await start_emulator(port)
    assert f"127.0.0.1:{port}" in str(err.value)
    assert "CAREBOT_SANDBOX_TELEGRAM_PORT" in str(err.value)
    emu = await start_emulator(0)  # 0: any free port
    try:
        assert emu.api_url.startswith("http://127.0.0.1:")
    finally:
        await emu.stop()


async def test_the_web_port_taken_is_one_line(db: str, emulator, clock) -> None:  # type: ignore[no-untyped-def]
    from bot.app import create_app
    from tests.conftest import make_settings

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings: Settings = make_settings(emulator, database_url=db, web_port=port)
        app = create_app(settings, clock, pace=emulator.pace)
        try:
            with pytest.raises(StartupError) as err:
                await app.start(receive_updates=False, schedule=False)
        finally:
            await app.stop()
    assert str(err.value).startswith(f"cannot listen on 127.0.0.1:{port} (")
    assert "CAREBOT_WEB_PORT" in str(err.value)


async def test_run_with_telegram_unreachable_stops_in_one_line(sqlite_template: Path,
                                                               tmp_path: Path) -> None:
    """The service's start: getMe fails; one line, exit 2, nothing left open behind it."""
    db = tmp_path / "carebot.sqlite3"
    db.write_bytes(sqlite_template.read_bytes())
    code, _, err = await carebot(
        tmp_path, "run", database_url=f"sqlite://{db}", bot_token="123456:TEST-TOKEN",
        telegram_api_url=f"http://127.0.0.1:{closed_port()}", staff_chat_id="-100123",
        session_secret="s" * 43)
    assert code == 2
    assert "Traceback" not in err and "Unclosed" not in err
    line = one_line(err)
    assert line.startswith("carebot run: cannot reach Telegram at http://127.0.0.1:")


# ------------------------------------------------------- every command, nothing reachable
#
# Each subcommand (listed from the parser, so a new one must be placed here) is run
# in-process through main(argv) against a database nothing listens on: one line naming the
# database and CAREBOT_DATABASE_URL, exit code 2. Those that also need Telegram are run
# against a reachable database and a Bot API URL nothing listens on.

def _leaves(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
            ) -> list[tuple[str, ...]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [prefix]
    return [leaf for name, sub in subs[0].choices.items() for leaf in _leaves(sub, (*prefix, name))]


COMMANDS = _leaves(build_parser())
# What each command is given (arguments only it needs); {file}: an existing file.
ARGS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("run",): (), ("migrate",): (), ("import",): ("deliveries", "{file}"),
    ("link",): ("13800138000",), ("staff", "add"): ("--login", "li", "--name", "李", "--role",
                                                    "agent"),
    ("staff", "list"): (), ("staff", "remove"): ("--login", "li"),
    ("staff", "passwd"): ("li", "--stdin"), ("staff", "unlock"): ("li",),
    ("ticket", "show"): ("T-0001",), ("complaints", "report"): ("--month", "2026-11"),
    ("report",): ("--month", "2026-11"), ("outbox",): (),
    ("campaign", "create"): ("{file}",), ("campaign", "list"): (),
    ("campaign", "audience"): ('{"models": ["星辰 S7"]}',),
    **{("campaign", a): ("1",) for a in ("preview", "pause", "resume", "cancel", "stats",
                                         "schedule")},
    ("campaign", "test"): ("1", "王芳"), ("tag", "add"): ("13800138000", "vip"),
    ("tag", "remove"): ("13800138000", "vip"), ("inbox",): (),
    ("booking", "add"): ("13800138000", "--day", "2099-01-05", "--slot", "09:00"),
    ("booking", "list"): (), ("booking", "mark"): ("1", "arrived"),
    ("backup",): ("--to", "{dir}"), ("restore",): ("{file}",),
}
# Commands that reach neither through these settings, and why.
NEITHER: dict[tuple[str, ...], str] = {
    ("sandbox",): "its own database and its own emulated Telegram",
    ("bench",): "its own temporary databases and emulator",
    ("scripts", "check"): "reads the script files only",
    ("doctor",): "reports every check, the database's among them (tests/test_doctor.py)",
}
NEEDS_TELEGRAM = [("link",), ("campaign", "test")]


def test_every_command_is_placed() -> None:
    assert set(COMMANDS) == ARGS.keys() | NEITHER.keys(), set(COMMANDS) ^ (ARGS.keys()
                                                                          | NEITHER.keys())


def _main(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...],
          **settings: str) -> int:
    for name in [n for n in os.environ if n.startswith("CAREBOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CAREBOT_LANGUAGE", "en")
    for key, value in settings.items():
        monkeypatch.setenv(f"CAREBOT_{key.upper()}", value)
    monkeypatch.chdir(tmp_path)  # no developer's .env
    monkeypatch.setattr(sys, "stdin", io.StringIO("a-long-enough-password\n"))
    (tmp_path / "in.csv").write_text("vin\n", encoding="utf-8")
    args = [a.replace("{file}", str(tmp_path / "in.csv")).replace("{dir}", str(tmp_path))
            for a in ARGS[command]]
    return main([*command, *args])


@pytest.mark.parametrize("command", sorted(ARGS), ids=" ".join)
def test_every_command_says_the_database_is_unreachable_in_one_line(
        command: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = f"postgres://carebot:Sup3rSecret@127.0.0.1:{closed_port()}/carebot"
    code = _main(tmp_path, monkeypatch, command, database_url=url,
                 bot_token="123456:TEST-TOKEN")
    out, err = capsys.readouterr()
    line = one_line(err)
    assert code == 2, (code, out, err)
    assert line.startswith(f"carebot {command[0]}: cannot use the database (PostgreSQL at "
                           "127.0.0.1:"), line
    assert "connection refused" in line and "CAREBOT_DATABASE_URL" in line  # what to check
    assert "Sup3rSecret" not in out + err


@pytest.mark.parametrize("command", NEEDS_TELEGRAM, ids=" ".join)
async def test_commands_that_need_telegram_say_it_is_unreachable_in_one_line(
        command: tuple[str, ...], db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from bot.campaigns import promotions
    from db.models import Staff
    from db.setup import close_database, open_database

    await Customer.create(name="王芳", phone="+8613800138000", link_token="tok-wang")
    await Staff.create(name="王芳", role="marketing", telegram_id=7001)
    await promotions.create_campaign(
        name="冬季保养", messages={"zh_CN": "您好"}, buttons=[], audience={},
        now=datetime.now(UTC), dealer={"name": "星辰汽车", "phone": "020-88886666"})
    await close_database()
    try:
        code = await asyncio.to_thread(
            _main, tmp_path, monkeypatch, command, database_url=db,
            bot_token="123456:TEST-TOKEN", telegram_api_url=f"http://127.0.0.1:{closed_port()}")
    finally:
        await open_database(db, apply_migrations=False)
    out, err = capsys.readouterr()
    line = one_line(err)
    assert code == 2, (code, out, err)
    assert line.startswith(f"carebot {command[0]}: cannot reach Telegram at http://127.0.0.1:")
    assert "CAREBOT_TELEGRAM_API_URL" in line and "TEST-TOKEN" not in out + err
