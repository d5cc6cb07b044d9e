"""Failures speak plainly in the console too (issue 18, point 7): an unknown URL and an
unexpected failure are the console's own page in the staff member's language (the browser's
when signed out), a failure carries an id that the log has with its traceback, and the JSON
API keeps its JSON answers."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.browser.conftest import PASSWORD, add_staff
from tests.conftest import BotEnv

Client = TestClient  # type: ignore[type-arg]


async def _broken(request: web.Request) -> web.Response:
    raise RuntimeError("the database said something private: +8613800138000")


@pytest_asyncio.fixture
async def client(env: BotEnv) -> AsyncIterator[Client]:
    env.carebot.web_app.router.add_get("/broken", _broken)
    async with TestClient(TestServer(env.carebot.web_app)) as c:
        yield c


async def sign_in(client: Client, login: str) -> None:
    page = await (await client.get("/login")).text()
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match
    r = await client.post("/login", data={"login": login, "password": PASSWORD,
                                          "_csrf": match.group(1)})
    assert r.status == 200 and r.url.path == "/", await r.text()


async def test_an_unknown_url_is_the_styled_page_in_the_staff_members_language(
        client: Client) -> None:
    await add_staff("wang", "supervisor", name="王主管", language="zh_CN")
    await sign_in(client, "wang")
    r = await client.get("/nope", headers={"Accept-Language": "en-US"})
    body = await r.text()
    assert r.status == 404
    assert "404: Not Found" not in body
    assert 'id="error-message">页面不存在。<' in body
    assert "王主管" in body  # the console's layout, signed in (the menu, the name)
    r = await client.get("/tickets/999999")  # a view's own "no such" is styled alike
    assert r.status == 404 and "页面不存在" in await r.text()


async def test_signed_out_the_browsers_language_decides(client: Client) -> None:
    r = await client.get("/nope", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert r.status == 404 and 'id="error-message">No such page.<' in await r.text()
    r = await client.get("/nope", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert r.status == 404 and 'id="error-message">页面不存在。<' in await r.text()


async def test_a_failure_is_the_styled_500_with_an_id_the_log_has(
        client: Client, caplog: pytest.LogCaptureFixture) -> None:
    await add_staff("li", "agent", name="李专员", language="zh_CN")
    await sign_in(client, "li")
    caplog.set_level(logging.ERROR)
    r = await client.get("/broken")
    body = await r.text()
    assert r.status == 500
    assert "Traceback" not in body and "RuntimeError" not in body and "+86138" not in body
    assert "系统出错了" in body
    match = re.search(r'id="error-id" data-id="([0-9a-f]{8})">错误编号 \1', body)
    assert match, body
    logged = [rec for rec in caplog.records if match.group(1) in rec.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert logged[0].exc_info[0] is RuntimeError  # the traceback is in the log
    assert "/broken" in logged[0].getMessage()


async def test_the_json_api_keeps_json_errors(client: Client) -> None:
    r = await client.get("/api/v1/nope", headers={"Authorization": "Bearer x"})
    assert r.status in (401, 404)
    assert "<html" not in (await r.text()).lower()
    r = await client.get("/nope", headers={"Accept": "application/json"})
    assert r.status == 404 and "<html" not in (await r.text()).lower()
