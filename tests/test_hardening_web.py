"""HTTP hardening (issue 15, points 5, 8, 9): bodies within limits, a webhook that never
answers 500, /metrics closed by default, the hardening headers on every answer."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from bot.clock import FakeClock
from bot.config import Settings
from db.models import AuditLog, Customer, InboxUpdate
from tests.browser.conftest import add_staff
from tests.conftest import BotEnv, make_settings
from tests.test_walking_skeleton import VIN_A
from tests.test_web import AUTH, delivery

HOOK = {"X-Telegram-Bot-Api-Secret-Token": "s3cret-hook"}
Client = TestClient  # type: ignore[type-arg]


@pytest_asyncio.fixture
async def client(env: BotEnv) -> AsyncIterator[Client]:
    async with TestClient(TestServer(env.carebot.web_app)) as c:
        yield c


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def update(n: int, text: str = "hi") -> dict[str, Any]:
    return {"update_id": n, "message": {"message_id": n, "date": 0, "text": text,
                                        "chat": {"id": 5, "type": "private"},
                                        "from": {"id": 5, "is_bot": False, "first_name": "A"}}}


# --------------------------------------------------------------------------- the webhook


WEBHOOK_JUNK: list[tuple[str, bytes]] = [
    ("empty object", b"{}"),
    ("empty array", b"[]"),
    ("a string", b'"update"'),
    ("null", b"null"),
    ("empty body", b""),
    ("not JSON", b"{not json"),
    ("not UTF-8", b'{"update_id": 1, "x": "\xff"}'),
    ("nested 100,000 deep", nested(100_000).encode()),
    ("an update nested 200 deep", json.dumps(update(7)).replace(
        '"text": "hi"', '"text": ' + nested(200)).encode()),
    ("a 5,000-digit update_id", b'{"update_id": ' + b"9" * 5000 + b"}"),
    ("update_id beyond 64 bits", b'{"update_id": 99999999999999999999}'),
    ("update_id true", b'{"update_id": true}'),
    ("update_id a string", b'{"update_id": "8"}'),
    ("a message that holds a number for a message", b'{"update_id": 9, "message": {"message": 3}}'),
    ("a lone surrogate", b'{"update_id": 10, "message": {"text": "\\ud800"}}'),
    ("NaN", b'{"update_id": 11, "x": NaN}'),
    ("a NUL in a text", b'{"update_id": 12, "message": {"text": "a\\u0000b"}}'),
]


@pytest.mark.parametrize("what,body", WEBHOOK_JUNK, ids=[w for w, _ in WEBHOOK_JUNK])
async def test_the_webhook_refuses_junk_with_a_4xx_and_a_quiet_log(
        client: Client, caplog: pytest.LogCaptureFixture, what: str, body: bytes) -> None:
    caplog.set_level(logging.INFO)
    r = await client.post("/telegram/webhook", data=body, headers=HOOK)
    assert 400 <= r.status < 500, (what, r.status, await r.text())
    assert await InboxUpdate.all().count() == 0
    for record in caplog.records:
        assert record.exc_info is None, record.getMessage()  # no traceback
        assert "ud800" not in record.getMessage() and "9999" not in record.getMessage()
    assert any("webhook: refused" in r.getMessage() for r in caplog.records)
    # A real update after the junk is stored before its 200, as always.
    r = await client.post("/telegram/webhook", json=update(42), headers=HOOK)
    assert r.status == 200
    assert (await InboxUpdate.get(update_id=42)).payload["message"]["text"] == "hi"


async def test_a_huge_webhook_body_is_413_without_reading_it(client: Client) -> None:
    r = await client.post("/telegram/webhook", data=b"x" * (5 * 1024 * 1024), headers=HOOK)
    assert r.status == 413
    assert await InboxUpdate.all().count() == 0


# --------------------------------------------------------------------------- the intake API


async def test_a_20_mb_api_body_is_413_at_once_while_healthz_stays_fast(
        client: Client) -> None:
    from bot.web.server import MAX_BODY

    one = len(json.dumps(delivery(VIN_A, phone="13800000000"))) + 2
    records = [delivery(VIN_A, phone=f"138{i:08d}") for i in range(20_300_000 // one)]
    body = json.dumps(records).encode()
    assert 20_000_000 <= len(body) < MAX_BODY  # what the server took in before issue 15
    started = time.perf_counter()
    post = asyncio.create_task(client.post("/api/v1/deliveries", data=body,
                                           headers={**AUTH, "Content-Type": "application/json"}))
    health = []
    while not post.done():
        at = time.perf_counter()
        assert (await client.get("/healthz")).status == 200
        health.append(time.perf_counter() - at)
    r = await post
    assert r.status == 413, (await r.text())[:300]
    assert time.perf_counter() - started < 2.0
    assert "at most" in (await r.json())["error"]
    assert health and max(health) < 0.2, health
    assert await Customer.all().count() == 0


async def test_too_many_records_in_one_request_is_413_with_the_limit(client: Client) -> None:
    from bot.web.server import API_MAX_RECORDS

    r = await client.post("/api/v1/visits", headers=AUTH, json=[{}] * (API_MAX_RECORDS + 1))
    assert r.status == 413
    assert f"{API_MAX_RECORDS:,}" in (await r.json())["error"]


API_JUNK: list[tuple[str, bytes, int]] = [
    ("not JSON", b"{not json", 400),
    ("empty", b"", 400),
    ("not UTF-8", b'[{"vin": "\xff"}]', 400),
    ("nested 100,000 deep", nested(100_000).encode(), 400),
    ("nested 500 deep", nested(500).encode(), 400),
    ("a 5,000-digit number", b'[{"vin": ' + b"7" * 5000 + b"}]", 400),
    ("Infinity", b'[{"mileage": Infinity}]', 400),
    ("1e999", b'{"visits": [{"mileage": 1e999}]}', 400),
    ("a lone surrogate", b'[{"owner_name": "\\udc00"}]', 400),
    ("a NUL in a name", b'[{"owner_name": "a\\u0000"}]', 400),
    ("an object without the array", b'{"vin": "x"}', 422),
    ("a record's field nested 10 deep", b'[{"vin": ' + nested(10).encode() + b"}]", 422),
    ("a 4,000-digit VIN", b'[{"vin": ' + b"1" * 4000 + b"}]", 422),
]


@pytest.mark.parametrize("what,body,status", API_JUNK, ids=[w for w, _, _ in API_JUNK])
async def test_malformed_api_bodies_answer_with_a_message_never_500(
        client: Client, what: str, body: bytes, status: int) -> None:
    for route in ("/api/v1/deliveries", "/api/v1/visits"):
        r = await client.post(route, data=body,
                              headers={**AUTH, "Content-Type": "application/json"})
        assert r.status == status, (what, route, r.status, await r.text())
        answer = await r.json()
        assert answer.get("error") or answer.get("errors"), (what, answer)  # says what is wrong


# --------------------------------------------------------------------------- /metrics


async def test_metrics_are_closed_by_default(db: str, emulator: Any, clock: FakeClock) -> None:
    from bot.app import create_app

    assert Settings.model_fields["metrics_open"].default is False
    assert Settings.model_fields["metrics_token"].default == ""
    for open_, token, auth, expected in [(False, "", "", 401), (True, "", "", 200),
                                          (True, "t0ken", "", 401), (False, "t0ken", "t0ken", 200)]:
        settings = make_settings(emulator, database_url=db, metrics_open=open_,
                                 metrics_token=token)
        carebot = create_app(settings, clock, pace=emulator.pace)
        await carebot.initialize()
        try:
            async with TestClient(TestServer(carebot.web_app)) as c:
                headers = {"Authorization": f"Bearer {auth}"} if auth else {}
                r = await c.get("/metrics", headers=headers)
                assert r.status == expected, (open_, token, auth)
                if expected == 401 and not token:
                    assert "CAREBOT_METRICS_TOKEN" in await r.text()
                assert (await c.get("/healthz")).status == 200  # health needs no token
        finally:
            await carebot.stop()


# --------------------------------------------------------------------------- headers


HARDENING = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
             "Referrer-Policy": "same-origin"}


def hardened(r: Any, *, cached: bool = False) -> None:
    for name, value in HARDENING.items():
        assert r.headers.get(name) == value, (r.url, name)
    assert "frame-ancestors 'none'" in r.headers.get("Content-Security-Policy", ""), r.url
    if not cached:
        assert r.headers.get("Cache-Control") == "no-store", r.url


async def test_every_answer_carries_the_hardening_headers(env: BotEnv, client: Client) -> None:
    from tests.test_console_access import csrf

    answers = [await client.get("/healthz"), await client.get("/metrics"),
               await client.post("/api/v1/deliveries", json=[]),  # 401
               await client.post("/api/v1/deliveries", headers=AUTH, json=[]),
               await client.get("/api/v1/campaigns", headers=AUTH),  # campaign data
               await client.post("/telegram/webhook", json={}, headers=HOOK),
               await client.get("/no/such/page"),
               await client.get("/", allow_redirects=False),  # 303 to sign in
               await client.get("/login")]
    for r in answers:
        hardened(r)
    static = await client.get("/static/console.css")
    assert static.status == 200
    hardened(static, cached=True)
    # The CSV export of an import's errors, signed in.
    await add_staff("imp", "admin")
    entry = await AuditLog.create(action="import.deliveries", target="file:x.csv",
                                  detail={"file": "x.csv", "errors": [
                                      {"row": 2, "field": "phone", "message": "bad"}]},
                                  created_at=env.clock.now())
    token = await csrf(client.session, str(client.make_url("/login")))
    r = await client.post("/login", data={"login": "imp", "password": "correct horse battery",
                                          "_csrf": token}, allow_redirects=False)
    assert r.status == 303
    r = await client.get(f"/imports/{entry.id}/errors.csv")
    assert r.status == 200 and r.content_type == "text/csv"
    hardened(r)


CAMPAIGN_JUNK: list[tuple[str, bytes, int]] = [
    ("not JSON", b"{not json", 400),
    ("nested 100,000 deep", nested(100_000).encode(), 400),
    ("a 5,000-digit number", b'{"name": ' + b"9" * 5000 + b"}", 400),
    ("an array, not an object", b"[]", 422),
]


@pytest.mark.parametrize("what,body,status", CAMPAIGN_JUNK, ids=[w for w, _, _ in CAMPAIGN_JUNK])
async def test_malformed_campaign_bodies_answer_with_a_message_never_500(
        client: Client, what: str, body: bytes, status: int) -> None:
    r = await client.post("/api/v1/campaigns", data=body,
                          headers={**AUTH, "Content-Type": "application/json"})
    assert r.status == status, (what, r.status, await r.text())
    assert (await r.json()).get("error"), what  # says what is wrong


async def test_a_huge_campaign_body_is_413(client: Client) -> None:
    r = await client.post("/api/v1/campaigns", data=b" " * (2 * 1024 * 1024),
                          headers={**AUTH, "Content-Type": "application/json"})
    assert r.status == 413 and "at most" in (await r.json())["error"]
