"""Health that tells the truth (issue 20, point 3): with the Bot API down, ``/healthz`` says
degraded with the reason once the outage lasts ``CAREBOT_TELEGRAM_DEGRADED_AFTER``, the
Telegram metrics drop, the log gets one line when it starts failing and one when it is
back (no traceback, whatever the number of calls between); ``/readyz`` answers 200 only
once start-up is done and while the database answers.

Telegram is the project's emulator over real HTTP, made unreachable with ``go_down()``
(every connection dropped, as a network failure looks to carebot); time is the FakeClock."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from telegram.error import NetworkError

from bot.delivery.health import TelegramHealth, status_kind
from bot.delivery.limits import Lane
from bot.version import VERSION
from db.setup import close_database, open_database
from tests.conftest import BotEnv
from tests.test_ops import parse, value

Client = TestClient  # type: ignore[type-arg]


@pytest_asyncio.fixture
async def client(env: BotEnv) -> AsyncIterator[Client]:
    async with TestClient(TestServer(env.carebot.web_app)) as c:
        yield c


async def health(client: Client) -> dict[str, object]:
    r = await client.get("/healthz")
    assert r.status == 200  # degraded or not: the load balancer keeps the instance
    body: dict[str, object] = await r.json()
    return body


async def metrics(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return parse(await (await client.get("/metrics")).text())


async def poll_fails(env: BotEnv) -> None:
    with pytest.raises(NetworkError):
        await env.carebot.poll_once()


def lines(caplog: pytest.LogCaptureFixture, word: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.levelno >= logging.INFO and word in r.getMessage()]


async def test_an_outage_degrades_healthz_drops_the_metrics_and_is_logged_once_each_way(
        env: BotEnv, client: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    owner = env.emu.user(701)
    owner.send_text("/help")
    await env.poll()
    assert len(owner.bot_texts()) == 1
    assert (await health(client))["status"] == "ok"
    s = await metrics(client)
    assert value(s, "carebot_telegram_up") == 1
    assert value(s, "carebot_telegram_errors_total", kind="network") == 0

    env.emu.go_down()
    await poll_fails(env)  # the poller's tick
    sent = await env.carebot.sender.text(701, "still there?", lane=Lane.REPLY)
    assert sent is None  # the sender tried until its deadline (virtual time), then gave up
    body = await health(client)
    assert (body["status"], body["telegram"]) == ("ok", "failing")  # not for long enough yet

    for _ in range(3):  # ticks every 30 s: still down, past the 60 s threshold
        env.clock.advance(seconds=30)
        await poll_fails(env)
    body = await health(client)
    assert body["status"] == "degraded" and body["database"] == "ok"
    assert "Telegram Bot API unreachable for 90s" in str(body["reason"])
    assert "network" in str(body["reason"])
    assert body["version"] == VERSION  # what runs (issue 20 point 2)
    s = await metrics(client)
    assert value(s, "carebot_telegram_up") == 0
    assert value(s, "carebot_telegram_last_success_age_seconds") == 90
    assert value(s, "carebot_telegram_errors_total", kind="network") >= 5
    assert value(s, "carebot_telegram_errors_total", kind="server") == 0
    assert value(s, "carebot_updates_lag_seconds") == 90  # getUpdates last answered then

    out = lines(caplog, "Telegram unreachable")
    assert len(out) == 1 and out[0].levelno == logging.WARNING
    assert "network" in out[0].getMessage()
    assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.WARNING)
    assert not lines(caplog, "trying again")  # the retries say nothing above DEBUG
    assert not lines(caplog, "reachable again")

    env.emu.come_back()
    env.clock.advance(seconds=15)
    owner.send_text("/help")
    await env.poll()
    assert len(owner.bot_texts()) == 2
    back = lines(caplog, "Telegram reachable again")
    assert len(back) == 1 and "after 105s" in back[0].getMessage()
    assert len(lines(caplog, "Telegram unreachable")) == 1
    body = await health(client)
    assert (body["status"], body["telegram"]) == ("ok", "ok") and "reason" not in body
    s = await metrics(client)
    assert value(s, "carebot_telegram_up") == 1
    assert value(s, "carebot_telegram_last_success_age_seconds") == 0
    assert value(s, "carebot_updates_lag_seconds") == 0


async def test_a_bad_gateway_counts_as_down_and_a_refusal_as_reachable(
        env: BotEnv, client: Client) -> None:
    env.emu.go_down(502)
    await env.carebot.sender.text(702, "hello", lane=Lane.REPLY)
    env.clock.advance(minutes=2)
    await env.carebot.sender.text(702, "hello", lane=Lane.REPLY)
    body = await health(client)
    assert body["status"] == "degraded" and "server" in str(body["reason"])
    env.emu.come_back()
    env.emu.fail_next("sendMessage", error_code=400, description="Bad Request: chat not found")
    await env.carebot.sender.text(702, "hello", lane=Lane.REPLY)  # Telegram answered: up
    body = await health(client)
    assert body["status"] == "ok"
    s = await metrics(client)
    assert value(s, "carebot_telegram_up") == 1
    assert value(s, "carebot_telegram_errors_total", kind="server") >= 2
    assert value(s, "carebot_telegram_errors_total", kind="bad_request") == 1


async def test_the_threshold_is_a_setting(env: BotEnv, client: Client) -> None:
    assert env.carebot.telegram.degraded_after == 60  # CAREBOT_TELEGRAM_DEGRADED_AFTER
    env.carebot.telegram.degraded_after = 300
    env.emu.go_down()
    await poll_fails(env)
    env.clock.advance(minutes=4)
    await poll_fails(env)
    assert (await health(client))["status"] == "ok"
    env.clock.advance(minutes=1)
    assert (await health(client))["status"] == "degraded"


async def test_readyz_after_start_up_and_503_when_the_database_is_gone(
        env: BotEnv, client: Client) -> None:
    r = await client.get("/readyz")
    assert r.status == 503 and (await r.json())["reason"] == "starting or stopping"
    await env.carebot.start(serve_web=False, receive_updates=False, schedule=False)
    r = await client.get("/readyz")
    assert r.status == 200 and (await r.json())["status"] == "ready"
    await close_database()
    # Nothing listens on port 1: the connection is refused, as when the server is down.
    await open_database("postgres://postgres@127.0.0.1:1/carebot_gone", apply_migrations=False)
    try:
        r = await client.get("/readyz")
        assert r.status == 503 and (await r.json())["reason"] == "the database did not answer"
        assert (await client.get("/healthz")).status == 503  # as before
    finally:
        await close_database()


def test_webhook_lag_is_how_long_telegram_has_held_updates(clock) -> None:  # type: ignore[no-untyped-def]
    health = TelegramHealth(clock)
    health.webhook_pending(0)
    assert health.updates_lag(clock.now(), webhook=True) == 0
    health.webhook_pending(3)
    clock.advance(seconds=40)
    health.webhook_pending(5)
    assert health.updates_lag(clock.now(), webhook=True) == 40
    health.webhook_pending(0)
    assert health.updates_lag(clock.now(), webhook=True) == 0


async def test_the_webhook_probe_reads_what_telegram_holds(env: BotEnv) -> None:
    env.emu.user(703).send_text("hi")  # not fetched: Telegram holds it
    await env.carebot.probe_webhook()
    assert env.carebot.telegram.pending_updates == 1
    env.clock.advance(seconds=20)
    assert env.carebot.telegram.updates_lag(env.clock.now(), webhook=True) == 20
    env.emu.go_down()
    await env.carebot.probe_webhook()  # no exception: counted, said once
    assert not env.carebot.telegram.up


def test_status_kinds() -> None:
    assert [status_kind(c) for c in (200, 400, 401, 403, 404, 409, 429, 500, 502, 418)] == [
        None, "bad_request", "unauthorized", "forbidden", "unauthorized", "conflict",
        "rate_limited", "server", "server", "other"]
