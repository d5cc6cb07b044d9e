"""Logs an operator can use (issue 20, point 4): ``CAREBOT_LOG_FORMAT=json`` is one JSON
object per line (a traceback folded into its ``exception`` field), both formats carry UTC
times with their zone, the optional access log never writes a query string or the webhook's
secret path, and over a whole scenario (an owner linking and writing, a complaint, a staff
answer through the emulator, the web side with its keys) no line holds the owner's phone,
their words, the bot token, the API key or the session secret."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from bot import logs
from bot.config import ConfigError, load_settings
from db.models import Staff, StaffRole
from tests.conftest import BotEnv, make_settings
from tests.test_cli_failures import carebot as run_carebot
from tests.test_complaints import AGENT, STAFF_CHAT, complain, group, owner_with_car

ZONE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")
SESSION_SECRET = "sess-Zq8vX3kPq1LmN0aB7cD9eF2gH4jK6mR5"
API_KEY = "api-key-Yt5rE3wQ9pL1kJ7hG2fD4sA6"
HOOK_SEGMENT = "hook-Wm3nB8vC1xZ5"
HOOK_SECRET = "hdr-Pq4oI8uY2tR6"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """carebot's log set up as ``carebot run`` does with CAREBOT_LOG_FORMAT=json (INFO),
    written to a buffer; the root logger put back afterwards."""
    root = logging.getLogger()
    level = root.level
    noisy = {n: logging.getLogger(n).level for n in (*logs.NOISY, *logs.QUIET)}
    buffer = io.StringIO()
    logs.setup("json", stream=buffer)
    try:
        yield buffer
    finally:
        for handler in [h for h in root.handlers if getattr(h, "carebot", False)]:
            root.removeHandler(handler)
        root.setLevel(level)
        for name, was in noisy.items():
            logging.getLogger(name).setLevel(was)
        logging.getLogger(logs.JOBS).removeFilter(logs._NOT_CANCELLED)


def parsed(buffer: io.StringIO) -> list[dict[str, Any]]:
    """Every line one JSON object with its fields, the time in UTC with its zone."""
    entries = []
    for line in buffer.getvalue().splitlines():
        entry = json.loads(line)
        assert {"time", "level", "logger", "message"} <= set(entry), line
        assert ZONE.match(entry["time"]), entry["time"]
        entries.append(entry)
    return entries


def test_json_lines_parse_and_fold_the_traceback(json_log: io.StringIO) -> None:
    log = logging.getLogger("bot.test_logs")
    log.info("two\nlines and 引号 \"quoted\"")
    try:
        raise KeyError("vehicle")
    except KeyError:
        log.exception("handler failed for update %s", 42)
    log.debug("not at INFO")
    entries = parsed(json_log)
    assert len(json_log.getvalue().splitlines()) == len(entries) == 2
    assert entries[0]["message"] == "two\nlines and 引号 \"quoted\""
    assert (entries[1]["level"], entries[1]["logger"]) == ("ERROR", "bot.test_logs")
    assert entries[1]["message"] == "handler failed for update 42"
    assert entries[1]["exception"].startswith("Traceback (most recent call last):")
    assert "KeyError: 'vehicle'" in entries[1]["exception"]


def test_a_job_cut_short_by_the_stop_is_no_traceback(json_log: io.StringIO) -> None:
    """A scheduler job cancelled while it waited for Telegram (SIGTERM during an outage)
    wrote an 80-line chained traceback; a job's real error is still written, and the
    scheduler's "skipped: still running" every 3 s is not."""
    jobs = logging.getLogger(logs.JOBS)
    for error in (asyncio.CancelledError(), KeyError("vehicle")):
        try:
            raise error
        except BaseException:
            jobs.exception('Job "relay_tick" raised an exception')
    logging.getLogger("apscheduler.scheduler").warning(
        'Execution of job "relay_tick" skipped: maximum number of running instances reached')
    entries = parsed(json_log)
    assert len(entries) == 1 and "KeyError: 'vehicle'" in entries[0]["exception"]


def test_text_lines_carry_utc_with_its_zone() -> None:
    record = logging.LogRecord("bot.x", logging.WARNING, __file__, 1, "hello %s", ("you",),
                               None)
    record.created = 1796263200.5  # 2026-12-03T02:00:00.5 UTC
    line = logs.TextFormatter().format(record)
    assert line == "2026-12-03T02:00:00.500+00:00 WARNING bot.x: hello you"


async def test_carebot_logs_json_when_told(tmp_path: Path) -> None:
    """The setting applies where ``carebot`` sets up its log: every stderr line parses."""
    code, out, err = await run_carebot(
        tmp_path, "migrate", database_url=f"sqlite://{tmp_path}/c.sqlite3", log_format="json")
    assert code == 0, err
    assert "migration(s) applied" in out  # what it says to the operator stays plain text
    entries = [json.loads(line) for line in err.splitlines()]
    assert any(e["message"].startswith("applied migration 0001") for e in entries)
    assert all(ZONE.match(e["time"]) for e in entries)
    with pytest.raises(ConfigError, match="CAREBOT_LOG_FORMAT"):
        load_settings(_env_file=None, log_format="xml")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest_asyncio.fixture
async def senv(db: str, emulator: Any, clock: Any) -> AsyncIterator[BotEnv]:
    """The complaint scenario's carebot with every secret set, the access log on, and its
    web side on a real port (its own access logger only runs there)."""
    from bot.app import create_app

    settings = make_settings(
        emulator, database_url=db, staff_chat_id=STAFF_CHAT, api_key=API_KEY,
        session_secret=SESSION_SECRET, access_log=True, web_port=free_port(),
        webhook_url=f"https://care.example.com/{HOOK_SEGMENT}", webhook_secret=HOOK_SECRET)
    emulator.group(STAFF_CHAT, "售后客服", is_forum=True)
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.initialize()
    await Staff.create(telegram_id=AGENT, name="王客服", role=StaffRole.AGENT)
    # the web side and the rest, but not setWebhook: the test fetches updates itself
    await carebot.start(serve_web=True, receive_updates=False, schedule=False)
    try:
        yield BotEnv(emulator, carebot, clock, settings)
    finally:
        await carebot.stop()


async def web_requests(env: BotEnv) -> None:
    base = f"http://127.0.0.1:{env.settings.web_port}"
    async with aiohttp.ClientSession() as http:
        for url, kw in (
            (f"/healthz?token={API_KEY}", {"headers": {"X-Forwarded-For": "203.0.113.7"}}),
            ("/api/v1/deliveries", {"headers": {"Authorization": f"Bearer {API_KEY}"},
                                    "json": []}),
            (f"/{HOOK_SEGMENT}", {"headers": {"X-Telegram-Bot-Api-Secret-Token": HOOK_SECRET},
                                  "data": b"{not json"}),
            (f"/{HOOK_SEGMENT}-old/{HOOK_SECRET}", {}),
        ):
            method = "POST" if "json" in kw or "data" in kw else "GET"
            async with http.request(method, base + url, **kw) as r:
                await r.read()


async def test_no_phone_text_or_secret_in_the_log_over_a_scenario(
        senv: BotEnv, json_log: io.StringIO, tmp_path: Path) -> None:
    env = senv
    owner = await owner_with_car(env, tmp_path, phone="13800138000")
    owner.send_text("我的手机号是13800138000，车在 4S 店")
    await env.poll()
    ticket = await complain(env, owner, "维修质量", "刹车有异响请尽快回电")
    staff = group(env)
    thread = staff.topic_id(f"{ticket.number} · 张伟 · 粤A12345 · 质量")
    staff.press(AGENT, "🙋 认领", thread)
    await env.poll()
    staff.send_text(AGENT, "张先生您好，明天上午为您检查", thread)
    await env.poll()
    assert owner.bot_texts()[-1].startswith("张先生您好，明天上午为您检查")
    await web_requests(env)

    entries = parsed(json_log)
    access = [e["message"] for e in entries if e["logger"] == "bot.web.access_log"]
    # nginx (127.0.0.1, a trusted proxy) forwarded it: the client's address is written
    assert any(a.startswith("203.0.113.7 GET /healthz 200 ") for a in access)
    assert any(" POST <webhook> 400 " in a for a in access)
    assert any(" GET <no route> 404 " in a for a in access)
    assert any(" POST /api/v1/deliveries " in a for a in access)
    carebots = [json.dumps(e, ensure_ascii=False) for e in entries
                if not e["logger"].startswith("bot.sandbox")]  # the emulator is Telegram
    assert len(carebots) >= 8  # imports, tickets, web requests: INFO, as in production
    secrets = ("13800138000", "手机号", "刹车有异响", "明天上午为您检查", env.emu.token,
               env.emu.token.split(":")[1], API_KEY, SESSION_SECRET, HOOK_SEGMENT,
               HOOK_SECRET, "?token")
    leaks = [(s, line) for line in carebots for s in secrets if s in line]
    assert not leaks
