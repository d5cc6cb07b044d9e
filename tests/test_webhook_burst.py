"""Owners' replies under load: a burst of 800 updates (eight times the connections Telegram
opens) POSTed to the webhook over real HTTP.

carebot runs in webhook mode (its own aiohttp server on a free port, PTB with concurrent
updates) against the Telegram emulator. 800 linked owners each have an open satisfaction
survey that the dispatcher really sent; each owner then does one thing: presses a score,
types a score, writes a free text, or presses "Contact us". The updates are made by the
emulator's drivers, taken from it with getUpdates (so they are exactly what Telegram would
post), and POSTed all at once with the secret header while /healthz is probed. Every score
must be stored exactly once, every text kept exactly once, and /healthz must answer quickly
throughout. A post with a wrong secret is refused and leaves no trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import pytest_asyncio

from bot import surveys
from bot.clock import FakeClock
from db.models import (
    Conversation,
    Customer,
    InboxStatus,
    InboxUpdate,
    MessageLog,
    Score,
    Touchpoint,
    TouchpointStatus,
)
from tests.conftest import BotEnv, make_settings

OWNERS = 800  # eight times the connections Telegram opens: a burst the route must queue
FIRST_USER = 7_000_000
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
HEALTH_TYPICAL = 0.5  # seconds: the median /healthz answer during the burst
HEALTH_LIMIT = 2.0  # seconds: the slowest one (test client, emulator and bot share one loop)
CONNECTIONS = 100  # the most Telegram opens to one webhook (setWebhook max_connections)
DRAIN_DEADLINE = 300.0  # seconds for every update to be handled (a slow CI machine)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest_asyncio.fixture
async def hook_env(db: str, emulator: Any, clock: FakeClock) -> AsyncIterator[BotEnv]:
    """carebot configured for webhook mode on a free port; started by the test."""
    from bot.app import create_app

    port = _free_port()
    settings = make_settings(emulator, database_url=db, web_port=port,
                             webhook_url=f"http://127.0.0.1:{port}")
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.initialize()
    try:
        yield BotEnv(emulator, carebot, clock, settings)
    finally:
        await carebot.stop()


def _letters(i: int) -> str:
    """A digit-free tag for owner ``i`` (a free text must not read as a score)."""
    out = ""
    for _ in range(4):
        i, r = divmod(i, 26)
        out += chr(ord("a") + r)
    return out


@dataclass
class Plan:
    """What each owner does in the burst, and what must be stored for it."""

    pressed: dict[int, int]  # user id -> score pressed
    typed: dict[int, tuple[str, int]]  # user id -> (text, score it means)
    texts: dict[int, str]  # user id -> free text (not a score)
    contact: set[int]  # user ids pressing "Contact us"


async def _seed_owners(env: BotEnv) -> dict[int, int]:
    """800 linked owners, each with a follow-up survey sent through the emulator.
    Returns user id -> touchpoint id."""
    now = env.clock.now()
    await Customer.bulk_create([
        Customer(name=f"车主{i}", phone=f"+86135{i:08d}", link_token=secrets.token_urlsafe(12),
                 telegram_user_id=FIRST_USER + i, telegram_chat_id=FIRST_USER + i, linked_at=now)
        for i in range(OWNERS)
    ], batch_size=500)
    ids = dict(await Customer.filter(telegram_user_id__gte=FIRST_USER)
               .values_list("telegram_user_id", "id"))
    for user_id in ids:
        env.emu.user(user_id, first_name=f"车主{user_id - FIRST_USER}")
    await Touchpoint.bulk_create([
        Touchpoint(customer_id=cid, kind="followup_3d", occasion_key="burst", due_at=now,
                   expires_at=now + timedelta(days=1))
        for cid in ids.values()
    ], batch_size=500)
    for _ in range(200):  # until every follow-up is out; a send Telegram deferred (a 429
        # on a loaded machine: its limits run on real time) is due again once the clock moves
        report = await env.tick()
        if await Touchpoint.filter(status=TouchpointStatus.SENT).count() == OWNERS:
            break
        if not report.sent:
            env.clock.advance(seconds=30)
    by_customer = dict(await Touchpoint.filter(kind="followup_3d").values_list("customer_id", "id"))
    assert await Touchpoint.filter(status=TouchpointStatus.SENT).count() == OWNERS
    return {user_id: by_customer[cid] for user_id, cid in ids.items()}


def _make_updates(env: BotEnv) -> Plan:
    """Queue one update per owner in the emulator: presses and messages, as owners do."""
    contact_label = env.carebot.services.scripts.label("contact_us_button", "zh_CN")
    typed_forms = ("{n}", "{n}分", "打{n}分！", "{n}/10")
    plan = Plan({}, {}, {}, set())
    for i in range(OWNERS):
        user_id = FIRST_USER + i
        score = i % 10 + 1
        kind = i % 5
        if kind in (0, 1):  # 800 score presses
            env.emu.press_button(user_id, user_id, str(score))
            plan.pressed[user_id] = score
        elif kind == 2:  # 400 typed scores
            text = typed_forms[i % len(typed_forms)].format(n=score)
            if i % 7 == 0:
                text = str(score).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
            assert surveys.parse_score(text) == score, text
            env.emu.user(user_id).send_text(text)
            plan.typed[user_id] = (text, score)
        elif kind == 3:  # 400 free texts, a few long enough to be offered to staff
            text = f"谢谢，车开着很顺 {_letters(i)}"
            if i % 4 == 3:
                text += "，就是中控屏偶尔会卡一下，希望下次保养的时候帮忙看看"
            assert surveys.parse_score(text) is None, text
            env.emu.user(user_id).send_text(text)
            plan.texts[user_id] = text
        else:  # 400 other presses: "Contact us" under the survey
            env.emu.press_button(user_id, user_id, contact_label)
            plan.contact.add(user_id)
    return plan


async def _take_updates(env: BotEnv, http: aiohttp.ClientSession) -> list[dict[str, Any]]:
    """Every queued update, as Telegram would post it, confirmed so the emulator holds none."""
    url = f"{env.emu.api_url}/bot{env.emu.token}/getUpdates"
    updates: list[dict[str, Any]] = []
    offset = 0
    while True:
        async with http.post(url, json={"offset": offset, "limit": 100, "timeout": 0}) as r:
            batch = (await r.json())["result"]
        if not batch:
            return updates
        updates.extend(batch)
        offset = batch[-1]["update_id"] + 1


async def test_a_burst_of_owner_updates_is_recorded_completely(hook_env: BotEnv) -> None:
    env = hook_env
    tp_of = await _seed_owners(env)
    plan = _make_updates(env)
    intruder = env.emu.user(FIRST_USER).send_text("伪造的消息 wrong secret")
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=CONNECTIONS), timeout=aiohttp.ClientTimeout(total=120),
    ) as http:
        updates = await _take_updates(env, http)
        forged = updates.pop()  # queued last
        assert forged["message"]["text"] == intruder["text"]
        assert len(updates) == OWNERS

        await env.carebot.start(serve_web=True, receive_updates=True, schedule=False)
        assert env.emu.webhook is not None
        base = f"http://127.0.0.1:{env.settings.web_port}"
        hook = f"{base}/telegram/webhook"

        # A wrong or missing secret is refused before anything is queued.
        for headers in ({SECRET_HEADER: "not-the-secret"}, {}):
            async with http.post(hook, json=forged, headers=headers) as r:
                assert r.status == 403

        health: list[tuple[int, float]] = []
        done = asyncio.Event()

        async def probe() -> None:
            # A monitor's own connection: waiting for one of the burst's would time the
            # test client's pool, not the process.
            async with aiohttp.ClientSession() as monitor:
                while not done.is_set():
                    started = time.perf_counter()
                    async with monitor.get(f"{base}/healthz") as r:
                        await r.read()
                        health.append((r.status, time.perf_counter() - started))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(done.wait(), 0.05)

        async def post(update: dict[str, Any]) -> int:
            async with http.post(hook, json=update,
                                 headers={SECRET_HEADER: env.settings.webhook_secret}) as r:
                await r.read()
                return r.status

        prober = asyncio.create_task(probe())
        try:
            statuses = await asyncio.gather(*(post(u) for u in updates))
            assert Counter(statuses) == {200: OWNERS}
            # every acknowledged update is in the inbox: handled or waiting its turn
            assert await InboxUpdate.all().count() == OWNERS
            await asyncio.wait_for(_inbox_drained(), DRAIN_DEADLINE)
        finally:
            done.set()
            await prober

    # The process stayed responsive: /healthz answered every probe, quickly.
    assert len(health) >= 3, health
    assert {status for status, _ in health} == {200}
    times = sorted(seconds for _, seconds in health)
    assert times[len(times) // 2] < HEALTH_TYPICAL, f"/healthz answers during the burst: {times}"
    assert times[-1] < HEALTH_LIMIT, (
        f"/healthz took {times[-1]:.3f} s during the burst: {[round(t, 3) for t in times]}"
    )

    # Every score exactly once, with its value and source.
    scores = await Score.all().values_list("touchpoint_id", "score", "source", "superseded_at")
    assert len(scores) == len(plan.pressed) + len(plan.typed)
    got = {tp: (score, source) for tp, score, source, gone in scores if gone is None}
    expected = {tp_of[u]: (s, "button") for u, s in plan.pressed.items()}
    expected |= {tp_of[u]: (s, "text") for u, (_, s) in plan.typed.items()}
    assert got == expected

    # Every update is in the message log exactly once (an owner's text and each press).
    incoming = await MessageLog.filter(direction="in").values_list("chat_id", "kind", "text")
    logged = Counter(incoming)
    for user_id, score in plan.pressed.items():
        assert logged[(user_id, "button", f"sv:{tp_of[user_id]}:{score}")] == 1
    for user_id, (text, _) in plan.typed.items():
        assert logged[(user_id, "text", text)] == 1
    for user_id, text in plan.texts.items():
        assert logged[(user_id, "text", text)] == 1
        assert logged[(user_id, surveys.LOG_COMMENT, text)] == 1  # kept with its survey
    for user_id in plan.contact:
        assert logged[(user_id, "button", "cp:start")] == 1
    assert sum(logged.values()) == OWNERS + len(plan.texts)
    assert not any("wrong secret" in text for _, _, text in incoming)

    # "Contact us" opened the complaint dialogue for each of them (state in the database).
    states = dict(await Conversation.filter(telegram_user_id__in=list(plan.contact))
                  .values_list("telegram_user_id", "state"))
    assert states == {u: "complaint:category" for u in plan.contact}

    # Each owner heard back after their update (a thank-you, a re-ask, the dialogue), and
    # every press was answered.
    silent = [u for u in range(FIRST_USER, FIRST_USER + OWNERS)
              if len(env.emu.user(u).bot_messages()) < 2]
    assert not silent, f"{len(silent)} owners got no reply, e.g. {silent[:5]}"
    unanswered = [u for u in (*plan.pressed, *plan.contact)
                  if len(env.emu.user(u).callback_answers) != 1]
    assert not unanswered, f"{len(unanswered)} presses not answered, e.g. {unanswered[:5]}"
    assert env.emu.stats["errors"].total() == 0, env.emu.stats["errors"]


def _message(update_id: int) -> dict[str, Any]:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 0, "chat": {"id": 5, "type": "private"},
        "from": {"id": 5, "is_bot": False, "first_name": "A"}, "text": f"hi {update_id}"}}


async def _inbox_drained() -> None:
    """Until every stored update is handled (the inbox's worker runs in the app)."""
    waiting = (InboxStatus.PENDING, InboxStatus.HANDLING)
    while await InboxUpdate.filter(status__in=waiting).exists():
        await asyncio.sleep(0.05)  # a condition polled under a deadline, not time passing


async def test_the_webhook_answers_200_only_once_the_update_is_stored(
        db: str, emulator: Any, clock: FakeClock) -> None:
    """Telegram never posts an update again after a 200: the update is committed first. A post
    that is not an update is refused; one that cannot be stored is 503 (Telegram retries)."""
    from aiohttp.test_utils import TestClient, TestServer

    from bot.app import create_app
    from db.setup import close_database

    settings = make_settings(emulator, database_url=db)
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.initialize()  # not started: nothing handles what is stored
    headers = {SECRET_HEADER: settings.webhook_secret}
    try:
        async with TestClient(TestServer(carebot.web_app)) as c:
            for n in (1, 2, 2):  # Telegram may post one twice: stored once
                assert (await c.post("/telegram/webhook", json=_message(n),
                                     headers=headers)).status == 200
            stored = await InboxUpdate.all().order_by("update_id").values_list(
                "update_id", "status", "chat_key")
            assert stored == [(1, InboxStatus.PENDING, 5), (2, InboxStatus.PENDING, 5)]
            r = await c.post("/telegram/webhook", json={"message": {"text": "x"}},
                             headers=headers)
            assert r.status == 400
            text = await (await c.get("/metrics")).text()
            assert 'carebot_webhook_requests_total{result="accepted"} 3\n' in text
            assert "carebot_inbox_depth 2\n" in text

            await close_database()  # the database is gone
            r = await c.post("/telegram/webhook", json=_message(3), headers=headers)
            assert r.status == 503
    finally:
        await carebot.stop()
