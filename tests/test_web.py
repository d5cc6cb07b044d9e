"""The HTTP side: webhook secret, intake API auth and validation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from bot.journeys.plans import CHECKIN
from db.models import Customer, InboxUpdate, Touchpoint, Vehicle
from tests.conftest import BotEnv
from tests.test_walking_skeleton import VIN_A, VIN_B

AUTH = {"Authorization": "Bearer test-api-key"}


@pytest_asyncio.fixture
async def client(env: BotEnv) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(env.carebot.web_app)) as c:
        yield c


def delivery(vin: str, phone: str = "13800138000", **over: object) -> dict[str, object]:
    record: dict[str, object] = {
        "vin": vin, "plate": "粤A12345", "model": "星辰 S7", "owner_name": "张伟",
        "phone": phone, "delivered_at": "2026-11-03 09:00", "sales_advisor": "李娜",
    }
    record.update(over)
    return record


async def test_webhook_without_the_secret_is_refused(env: BotEnv, client: TestClient) -> None:  # type: ignore[type-arg]
    update = {"update_id": 1, "message": {"message_id": 1, "date": 0,
                                          "chat": {"id": 5, "type": "private"},
                                          "from": {"id": 5, "is_bot": False, "first_name": "A"},
                                          "text": "hi"}}
    r = await client.post("/telegram/webhook", json=update)
    assert r.status == 403
    r = await client.post("/telegram/webhook", json=update,
                          headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})
    assert r.status == 403
    assert await InboxUpdate.all().count() == 0
    r = await client.post("/telegram/webhook", json=update,
                          headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-hook"})
    assert r.status == 200
    stored = await InboxUpdate.get(update_id=1)
    assert stored.payload["message"]["text"] == "hi"


async def test_api_requires_the_key(client: TestClient) -> None:  # type: ignore[type-arg]
    r = await client.post("/api/v1/deliveries", json=[delivery(VIN_A)])
    assert r.status == 401
    r = await client.post("/api/v1/deliveries", json=[delivery(VIN_A)],
                          headers={"Authorization": "Bearer nope"})
    assert r.status == 401
    assert "API key" in (await r.json())["error"]
    assert await Customer.all().count() == 0


async def test_api_stores_good_rows_and_reports_bad_ones(client: TestClient) -> None:  # type: ignore[type-arg]
    r = await client.post("/api/v1/deliveries", headers=AUTH, json={"deliveries": [
        delivery(VIN_A),
        delivery(VIN_B, phone="12345"),
        delivery("LSVAU2180N218329X", phone="13900139000"),
        delivery(VIN_B, phone="13700137000", delivered_at=None),
        "not an object",
    ]})
    assert r.status == 422
    body = await r.json()
    fields = {(e["row"], e["field"]) for e in body["errors"]}
    assert (2, "phone") in fields
    assert (3, "vin") in fields
    assert (4, "delivered_at") in fields
    assert any(e["row"] == 5 for e in body["errors"])
    assert body["created"] == 1
    assert await Vehicle.filter(vin=VIN_A).exists()
    assert await Touchpoint.filter(kind=CHECKIN).count() == 1


async def test_api_all_good_is_200_and_idempotent(client: TestClient) -> None:  # type: ignore[type-arg]
    payload = [delivery(VIN_A), delivery(VIN_B, phone="13700137000")]
    r = await client.post("/api/v1/deliveries", headers=AUTH, json=payload)
    assert r.status == 200
    assert (await r.json())["created"] == 2
    r = await client.post("/api/v1/deliveries", headers=AUTH, json=payload)
    assert r.status == 200
    body = await r.json()
    assert (body["created"], body["unchanged"]) == (0, 2)
    assert await Touchpoint.filter(kind=CHECKIN).count() == 2


async def test_api_malformed_bodies(client: TestClient) -> None:  # type: ignore[type-arg]
    r = await client.post("/api/v1/deliveries", headers=AUTH, data=b"{not json")
    assert r.status == 400
    assert "JSON" in (await r.json())["error"]
    r = await client.post("/api/v1/deliveries", headers=AUTH, json={"vin": VIN_A})
    assert r.status == 422


async def test_healthz(client: TestClient) -> None:  # type: ignore[type-arg]
    r = await client.get("/healthz")
    assert r.status == 200
