"""The ``carebot`` command speaks to staff from its catalogues, in their language (issue 18,
point 1): no English literal printed from ``bot/cli`` that is not the catalogue's, every key
the code asks for exists in both languages, and commands print Chinese under zh_CN."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.cli.say import CATALOGUES, cli_language
from db.models import Customer
from db.setup import close_database, open_database

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "bot" / "cli"
LETTERS = re.compile(r"[A-Za-z]{2,}")

# What prints words and why it may: each (module, the literal text of the call).
ALLOWED: dict[tuple[str, str], str] = {
    ("say.py", "carebot {}: {}"): "the catalogue's own printer: the command's name, then the words",
    ("core.py", "carebot {}: {}"): "a StartupError's line after the command's name",
    ("core.py", "{} {}: https://t.me/{}?start={}"): "the deep link itself (machine output)",
    ("touchpoints.py", "carebot outbox: "): "the command's name before the catalogue's words",
    ("checks.py", "console"): "a doctor area's code (its words: doctor.area.*)",
    ("checks.py", "telegram"): "a doctor area's code (its words: doctor.area.*)",
    ("checks.py", "chmod 0750 {}"): "a command to type",
    ("checks.py", "chmod 0640 {}"): "a command to type",
    ("checks.py", "chown carebot:carebot {}"): "a command to type",
    ("checks.py", "chmod -R o-w {}"): "a command to type",
}
# Calls whose string arguments a person reads.
SPEAKING = {"print", "exit", "SystemExit", "error", "ArgumentTypeError", "getpass",
            "input", "StartupError", "ConfigError", "CampaignError", "ValueError",
            "Finding", "_fail"}  # the last two: carebot doctor's lines


def _literal(node: ast.expr) -> str | None:
    """The text of a str literal or f-string (values as {}), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(str(v.value) if isinstance(v, ast.Constant) else "{}"
                       for v in node.values)
    if isinstance(node, ast.BinOp):  # "a" + f"b"
        left, right = _literal(node.left), _literal(node.right)
        return None if left is None and right is None else (left or "") + (right or "")
    return None


def _name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def english_literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of each literal with words passed to a call that speaks."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and _name(node) in SPEAKING):
            continue
        for arg in [*node.args, *(k.value for k in node.keywords if k.arg != "file")]:
            text = _literal(arg)
            if text is not None and LETTERS.search(text) \
                    and (path.name, text) not in ALLOWED:
                found.append((node.lineno, text))
    return found


def test_the_scan_finds_an_english_literal(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('print(f"no owner with phone {p}")\nprint(t("x"))\n'
                      'raise SystemExit("carebot: bad")\nprint(f"{a:>8}  {b}")\n')
    assert english_literals(sample) == [(1, "no owner with phone {}"), (3, "carebot: bad")]


# Start-up outside bot/cli speaks from the same catalogue (bot/terminal_words.py): the web
# port taken (bot.app), a wrong setting (bot.config), the sandbox's banner and port.
START_UP = [ROOT / "bot" / "app.py", ROOT / "bot" / "config.py",
            ROOT / "bot" / "sandbox" / "scene.py"]
# carebot's rules for a setting that the console's Settings page shows too keep their words
CONFIG_RULES = {"name at least one time of day, e.g. 10:00,15:00,19:00"}


@pytest.mark.parametrize("path", [*sorted(CLI.glob("*.py")), *START_UP], ids=lambda p: p.name)
def test_the_cli_prints_no_english_literal(path: Path) -> None:
    if path.name == "config.py":
        assert {text for _, text in english_literals(path)} <= CONFIG_RULES
        return
    assert english_literals(path) == []


def _keys(lang: str) -> dict[str, str]:
    keys: dict[str, str] = {}

    def walk(data: dict[str, Any], prefix: str) -> None:
        for key, value in data.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                keys[prefix + key] = value

    for path in sorted((CATALOGUES / lang).glob("*.toml")):
        walk(tomllib.loads(path.read_text(encoding="utf-8")), "")
    return keys


def _asked_for() -> set[str]:
    """The keys bot/cli asks for by a literal: t("k"), say("k"), fail("cmd", "k")."""
    asked = set()
    for path in [*CLI.glob("*.py"), *START_UP]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and _name(node) in ("t", "say", "fail"):
                where = 1 if _name(node) == "fail" else 0
                arg = node.args[where] if len(node.args) > where else None
                if isinstance(arg, ast.Constant):
                    asked.add(str(arg.value))
    return asked


def test_both_languages_have_every_key_the_cli_asks_for() -> None:
    en, zh = _keys("en"), _keys("zh_CN")
    assert en.keys() == zh.keys(), en.keys() ^ zh.keys()
    asked = _asked_for()
    assert len(asked) > 60 and not asked - en.keys(), asked - en.keys()
    assert {"startup.web_port_taken", "config.problem", "sandbox.console"} <= asked
    for key, text in en.items():  # the same values to fill in, in both
        assert set(re.findall(r"\{(\w+)", text)) == set(re.findall(r"\{(\w+)", zh[key])), key


@pytest.mark.parametrize(("environ", "lang"), [
    ({}, "zh_CN"), ({"LANG": "C.UTF-8"}, "zh_CN"), ({"LANG": "en_US.UTF-8"}, "en"),
    ({"LANG": "en_US.UTF-8", "LC_ALL": "zh_CN.UTF-8"}, "zh_CN"),
    ({"LANG": "zh_CN.UTF-8", "LC_MESSAGES": "en_GB"}, "en"),
    ({"LC_ALL": "en_US.UTF-8", "CAREBOT_LANGUAGE": "zh_CN"}, "zh_CN"),
    ({"LANG": "zh_TW.UTF-8", "CAREBOT_LANGUAGE": "en"}, "en"),
])
def test_the_language_comes_from_the_setting_then_the_locale(environ: dict[str, str],
                                                             lang: str) -> None:
    assert cli_language(environ) == lang


async def test_commands_speak_chinese_under_zh_cn(db: str, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    await Customer.create(name="王芳", phone="+8613800138000", link_token="tok-wang")
    await close_database()  # main() opens its own, as the command does
    monkeypatch.setenv("CAREBOT_LANGUAGE", "zh_CN")
    monkeypatch.setenv("CAREBOT_DATABASE_URL", db)
    monkeypatch.delenv("CAREBOT_BOT_TOKEN", raising=False)
    try:
        assert await _main("staff", "add", "--login", "li", "--name", "李主管",
                           "--role", "supervisor") == 0
        out = capsys.readouterr().out
        assert "已添加：李主管（接待主管），Telegram ID -，登录名 li" in out
        assert "请设置控制台密码：carebot staff passwd li" in out
        assert await _main("link", "13900139000") == 1
        assert capsys.readouterr().err.strip() == \
            "carebot link: 没有电话为 +8613900139000 的车主；请先导入其交车记录"
        assert await _main("ticket", "show", "T-9") == 1
        assert capsys.readouterr().err.strip() == "carebot ticket show: 没有工单 T-9"
        assert await _main("migrate") == 0
        assert capsys.readouterr().out.startswith("无需迁移：数据库已是最新")
    finally:
        await open_database(db, apply_migrations=False)


async def _main(*argv: str) -> int:
    """``carebot ARGV`` in a worker thread (main runs its own event loop)."""
    import asyncio

    return await asyncio.to_thread(main, list(argv))


def test_what_could_not_be_reached_is_said_in_chinese(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    from tests.test_cli_failures import closed_port

    port = closed_port()
    monkeypatch.setenv("CAREBOT_LANGUAGE", "zh_CN")
    monkeypatch.setenv("CAREBOT_DATABASE_URL", f"postgres://carebot:pw@127.0.0.1:{port}/x")
    monkeypatch.chdir(tmp_path)
    assert main(["staff", "list"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"carebot staff: 无法使用数据库（位于 127.0.0.1:{port} 的 PostgreSQL，"
        f"CAREBOT_DATABASE_URL=postgres://carebot:***@127.0.0.1:{port}/x）：连接被拒绝："
        "那里的 PostgreSQL 是否在运行？CAREBOT_DATABASE_URL 中的主机和端口是否正确？")


def test_the_doctors_report_in_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.cli.checks import Finding
    from bot.cli.doctor import report

    monkeypatch.setenv("CAREBOT_LANGUAGE", "zh_CN")
    text = report([Finding("database", "x"), Finding("data folder", "y", "z", problem=True)])
    lines = text.splitlines()
    assert lines[1].split() == ["正常", "数据库", "x"]
    assert lines[2].split() == ["失败", "数据目录", "y"] and lines[3].split() == ["->", "z"]
    assert lines[-1].startswith("1 个问题，0 条提示")


def test_start_up_speaks_chinese_under_zh_cn(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A wrong setting, a port taken (the web's, the emulator's) and the sandbox's banner,
    raised or printed outside bot/cli, in the staff member's language."""
    from bot.config import ConfigError, Settings, load_settings
    from bot.sandbox.scene import DemoLogin, print_console_access, print_transcript
    from db.models import StaffRole

    monkeypatch.setenv("CAREBOT_LANGUAGE", "zh_CN")
    monkeypatch.setenv("CAREBOT_WEB_PORT", "eighty")
    monkeypatch.setenv("CAREBOT_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=None)
    assert str(err.value) == (
        "设置 CAREBOT_TIMEZONE 有误：未知时区 'Mars/Olympus'；请用标准时区名称，如 `Asia/Shanghai`"
        "（当前值：'Mars/Olympus'）；设置 CAREBOT_WEB_PORT 有误：不是整数（当前值：'eighty'）")
    monkeypatch.delenv("CAREBOT_WEB_PORT")
    monkeypatch.delenv("CAREBOT_TIMEZONE")
    print_console_access(Settings(_env_file=None), [
        DemoLogin("wang", "王主管", StaffRole.SUPERVISOR, "pw-1")])
    print_transcript("王芳", [{"from_bot": True, "text": "您好"}, {"contact": {
        "phone_number": "+8613800138000"}}])
    out = capsys.readouterr().out
    assert "控制台：http://127.0.0.1:8080（演示账号" in out
    assert "账号 wang    密码 pw-1   （接待主管，王主管）" in out
    assert "  机器人 │ 您好" in out and "  车主   │ [分享名片 +8613800138000]" in out
    assert LETTERS.findall(out.replace("http://127.0.0.1:8080", "").replace(
        "/sandbox/chat", "")) == ["wang", "pw"]


async def test_the_web_port_taken_in_chinese(db: str, emulator, clock,  # type: ignore[no-untyped-def]
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from bot.app import create_app
    from bot.startup import StartupError
    from tests.conftest import make_settings

    monkeypatch.setenv("CAREBOT_LANGUAGE", "zh_CN")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        app = create_app(make_settings(emulator, database_url=db, web_port=port), clock,
                         pace=emulator.pace)
        try:
            with pytest.raises(StartupError) as err:
                await app.start(receive_updates=False, schedule=False)
        finally:
            await app.stop()
    assert str(err.value).startswith(f"无法在 127.0.0.1:{port} 上监听（")
    assert str(err.value).endswith("：请检查 CAREBOT_WEB_HOST 和 CAREBOT_WEB_PORT"
                                   "（该端口上是否已有另一个 carebot？）")
