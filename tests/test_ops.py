"""/healthz and /metrics: the database check, the Prometheus text, the optional token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from bot.clock import FakeClock
from db.models import Customer, Ticket, TicketLevel, TicketState, Touchpoint, TouchpointStatus
from db.setup import close_database, open_database
from tests.conftest import BotEnv, make_settings

HOOK = {"X-Telegram-Bot-Api-Secret-Token": "s3cret-hook"}
SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')


@pytest_asyncio.fixture
async def client(env: BotEnv) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(env.carebot.web_app)) as c:
        yield c


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The Prometheus text format, checked: every sample belongs to a family declared with
    HELP and TYPE before it; returns {(name, labels): value}."""
    declared: dict[str, str] = {}
    helped: set[str] = set()
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in ("counter", "gauge", "histogram"), line
            assert name in helped and name not in declared, line
            declared[name] = kind
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.groups()
        family = re.sub(r"_(bucket|sum|count)$", "", name) \
            if re.sub(r"_(bucket|sum|count)$", "", name) in declared and \
            declared[re.sub(r"_(bucket|sum|count)$", "", name)] == "histogram" else name
        assert family in declared, f"{name} has no TYPE"
        pairs = tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels or "")))
        key = (name, pairs)
        assert key not in samples, f"duplicate sample {key}"
        samples[key] = float(value)
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_healthz_checks_the_database(client: TestClient) -> None:  # type: ignore[type-arg]
    r = await client.get("/healthz")
    assert r.status == 200
    body = await r.json()
    assert body["status"] == "ok" and body["database"] == "ok"


async def test_healthz_is_503_when_the_database_is_gone(
        env: BotEnv, client: TestClient) -> None:  # type: ignore[type-arg]
    await close_database()
    # Nothing listens on port 1: the connection is refused, as when the server is down.
    await open_database("postgres://postgres@127.0.0.1:1/carebot_gone", apply_migrations=False)
    try:
        r = await client.get("/healthz")
        assert r.status == 503
        assert (await r.json())["status"] == "unavailable"
        r = await client.get("/metrics")
        assert r.status == 200  # the process figures still answer; carebot_up says why not
        samples = parse(await r.text())
        assert value(samples, "carebot_up") == 0
        assert ("carebot_queue_depth", ()) not in samples
    finally:
        await close_database()


async def _seed(clock: FakeClock) -> None:
    now = clock.now()
    linked = await Customer.create(name="张伟", phone="+8613800138000", link_token="a",
                                   telegram_user_id=11, telegram_chat_id=11)
    waiting = await Customer.create(name="王芳", phone="+8613900139000", link_token="b")
    blocked = await Customer.create(name="李强", phone="+8613700137000", link_token="c",
                                    telegram_user_id=12, telegram_chat_id=12,
                                    unreachable_at=now)
    statuses = [TouchpointStatus.SENT] * 3 + [TouchpointStatus.FAILED,
                                              TouchpointStatus.UNREACHABLE,
                                              TouchpointStatus.EXPIRED, TouchpointStatus.HELD]
    for k, status in enumerate(statuses):
        await Touchpoint.create(customer=linked, kind="followup_3d", occasion_key=f"s{k}",
                                due_at=now - timedelta(days=1), status=status)
    due = {"old": (linked, now - timedelta(minutes=10)), "new": (linked, now),
           "future": (linked, now + timedelta(hours=1)), "unlinked": (waiting, now),
           "blocked": (blocked, now)}
    for key, (customer, at) in due.items():
        await Touchpoint.create(customer=customer, kind="delivery_checkin", occasion_key=key,
                                due_at=at, expires_at=now + timedelta(hours=5))
    await Touchpoint.create(customer=linked, kind="delivery_checkin", occasion_key="stale",
                            due_at=now - timedelta(days=1), expires_at=now - timedelta(hours=1))

    def ticket(n: int, state: TicketState, level: TicketLevel, due_at: Any,
               breaches: int) -> Ticket:
        return Ticket(number=f"T-{n:04d}", customer=linked, channel="bot", category="other",
                      created_at=now - timedelta(hours=5), first_answer_due=now, state=state,
                      level=level, due_at=due_at, breaches=breaches)

    for t in (ticket(1, TicketState.OPEN, TicketLevel.AGENT, now - timedelta(minutes=1), 0),
              ticket(2, TicketState.REOPENED, TicketLevel.SUPERVISOR, now + timedelta(hours=1),
                     2),
              ticket(3, TicketState.CLAIMED, TicketLevel.AGENT, now + timedelta(hours=1), 0),
              ticket(4, TicketState.CLOSED, TicketLevel.MANAGER, None, 3)):
        await t.save()


async def test_metrics_from_the_database(env: BotEnv,
                                         client: TestClient) -> None:  # type: ignore[type-arg]
    await _seed(env.clock)
    r = await client.get("/metrics")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    s = parse(await r.text())
    assert value(s, "carebot_up") == 1
    for status, n in {"sent": 3, "failed": 1, "unreachable": 1, "expired": 1,
                      "skipped": 0}.items():
        assert value(s, "carebot_touchpoints_total", status=status) == n, status
    assert value(s, "carebot_outbox_rows", status="pending") == 6
    assert value(s, "carebot_outbox_rows", status="held") == 1
    # Due now, still valid, for a linked and reachable owner: "old" and "new" only.
    assert value(s, "carebot_queue_depth") == 2
    assert value(s, "carebot_queue_oldest_seconds") == 600
    assert value(s, "carebot_queue_waiting_for_link") == 1
    assert value(s, "carebot_tickets_open", level="agent") == 2
    assert value(s, "carebot_tickets_open", level="supervisor") == 1
    assert value(s, "carebot_tickets_open", level="manager") == 0
    assert value(s, "carebot_tickets_overdue") == 1
    assert value(s, "carebot_tickets_open_breached") == 1
    assert value(s, "carebot_ticket_deadline_breaches_total") == 5
    assert value(s, "carebot_quiet_hours") == 0  # 10:00 in Asia/Shanghai

    env.clock.advance(timedelta(hours=2))  # "future" is due too; every deadline has passed
    s = parse(await (await client.get("/metrics")).text())
    assert value(s, "carebot_queue_depth") == 3
    assert value(s, "carebot_queue_oldest_seconds") == 2 * 3600 + 600
    assert value(s, "carebot_tickets_overdue") == 3
    env.clock.advance(timedelta(hours=10))  # 22:00 local: quiet; the check-ins expired
    s = parse(await (await client.get("/metrics")).text())
    assert value(s, "carebot_quiet_hours") == 1
    assert value(s, "carebot_queue_depth") == 0
    assert value(s, "carebot_queue_oldest_seconds") == 0


async def test_metrics_of_this_process(env: BotEnv,
                                       client: TestClient) -> None:  # type: ignore[type-arg]
    update = {"update_id": 1, "message": {"message_id": 1, "date": 0,
                                          "chat": {"id": 5, "type": "private"},
                                          "from": {"id": 5, "is_bot": False, "first_name": "A"},
                                          "text": "hi"}}
    for headers in (HOOK, HOOK, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
        await client.post("/telegram/webhook", json=update, headers=headers)
    r = await client.post("/telegram/webhook", data=b"{not json", headers=HOOK)
    assert r.status == 400
    s = parse(await (await client.get("/metrics")).text())
    assert value(s, "carebot_webhook_requests_total", result="accepted") == 2
    assert value(s, "carebot_webhook_requests_total", result="forbidden") == 1
    assert value(s, "carebot_webhook_requests_total", result="bad_request") == 1
    assert value(s, "carebot_webhook_request_seconds_count") == 4
    assert value(s, "carebot_webhook_request_seconds_bucket", le="+Inf") == 4
    buckets = sorted((float(dict(labels)["le"]), n) for (name, labels), n in s.items()
                     if name == "carebot_webhook_request_seconds_bucket")
    assert [n for _, n in buckets] == sorted(n for _, n in buckets)  # cumulative
    # The application is not running in this test: the update (posted twice, stored once)
    # waits in the inbox, and nothing has been sent or parked.
    assert value(s, "carebot_inbox_depth") == 1
    assert value(s, "carebot_inbox_parked") == 0
    assert value(s, "carebot_updates_in_progress") == 0
    assert value(s, "carebot_telegram_rate_limited_total") == 0
    assert value(s, "carebot_failed_sends") == 0
    assert value(s, "carebot_sends_total", lane="reply") == 0


async def test_metrics_token(db: str, emulator: Any, clock: FakeClock) -> None:
    from bot.app import create_app

    settings = make_settings(emulator, database_url=db, metrics_token="scrape-me")
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.initialize()
    try:
        async with TestClient(TestServer(carebot.web_app)) as c:
            assert (await c.get("/metrics")).status == 401
            r = await c.get("/metrics", headers={"Authorization": "Bearer nope"})
            assert r.status == 401
            assert r.headers["WWW-Authenticate"] == "Bearer"
            r = await c.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
            assert r.status == 200
            assert value(parse(await r.text()), "carebot_up") == 1
            assert (await c.get("/healthz")).status == 200  # health needs no token
    finally:
        await carebot.stop()
