"""Settings changed in the console (issue 18 point 4): admins only, validated as start-up
validates, all of a group or nothing, audited, and used by every running instance without
a restart. SQLite and PostgreSQL (the ``db`` fixture)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.cli import main
from bot.clock import FakeClock
from db.models import AuditLog, SettingOverride
from db.setup import close_database, open_database
from tests.browser.conftest import add_staff, free_port
from tests.conftest import make_settings
from tests.test_console_access import csrf, signed_in


@pytest_asyncio.fixture
async def app(db: str, emulator: Any, clock: FakeClock) -> AsyncIterator[tuple[str, Any]]:
    from bot.app import create_app

    settings = make_settings(emulator, database_url=db, web_port=free_port(),
                             session_secret="s", followup_day=4)  # 4: from the environment
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.start(serve_web=True, receive_updates=False, schedule=False)
    try:
        yield f"http://127.0.0.1:{settings.web_port}", carebot
    finally:
        await carebot.stop()


def field_value(page: str, name: str) -> str:
    m = re.search(rf'<input name="{name}" value="([^"]*)"', page)
    assert m, f"no field {name}"
    return m.group(1)


async def test_an_admin_changes_a_group_and_every_instance_uses_it(
        app: tuple[str, Any], emulator: Any, clock: FakeClock, db: str) -> None:
    from bot.app import create_app

    base, carebot = app
    # another instance on the same database, started before the change
    other = create_app(make_settings(emulator, database_url=db, followup_day=4), clock,
                       pace=emulator.pace)
    await other.start(serve_web=False, receive_updates=False, schedule=False)
    try:
        assert other.services.rules.journeys.followup_day == 4
        root = await add_staff("root", "admin", name="周主管", language="zh_CN")
        http = await signed_in(base, "root")
        async with http:
            async with http.get(f"{base}/settings") as r:
                page = await r.text()
            assert r.status == 200
            assert "交车回访日" in page and "三日回访" in page  # title and explanation
            assert field_value(page, "followup_day") == "4"
            setting = page[page.index('id="setting-followup_day"'):]
            assert "环境文件" in setting[:400]  # where it comes from
            token = await csrf(http, f"{base}/settings")
            async with http.post(f"{base}/settings", data={
                    "_csrf": token, "group": "followup", "followup_day": "5",
                    "followup_time": "10:00", "quiet_hours": "22:00-08:00"}) as r:
                page = await r.text()
            assert r.status == 200 and "已保存" in page
            assert field_value(page, "followup_day") == "5"
            assert 'id="setting-followup_day" data-source="console"' in page
        # this instance at once, rules and all
        assert carebot.services.settings.followup_day == 5
        assert carebot.services.rules.journeys.followup_day == 5
        assert str(carebot.services.settings.quiet) == "22:00-08:00"
        # the other one at its next dispatcher tick, without a restart
        assert other.services.settings.followup_day == 4
        await other.dispatcher.dispatch_due()
        assert other.services.rules.journeys.followup_day == 5
        assert str(other.services.settings.quiet) == "22:00-08:00"
        assert other.services.setting_overrides.source("followup_day") == "console"
        # only what changed was stored, each with who, when, old and new
        rows = await SettingOverride.all().order_by("key").values_list("key", "value",
                                                                       "staff_id")
        assert rows == [("followup_day", "5", root.id), ("quiet_hours", "22:00-08:00", root.id)]
        entry = await AuditLog.get(target="setting:followup_day")
        assert (entry.staff_id, entry.action, entry.detail) == (
            root.id, "setting.edit", {"value": ["4", "5"]})
        assert entry.created_at == clock.now()

        # reset: back to the environment's value, here and there
        http = await signed_in(base, "root")
        async with http:
            token = await csrf(http, f"{base}/settings")
            async with http.post(f"{base}/settings", data={
                    "_csrf": token, "group": "followup", "reset": "followup_day"}) as r:
                page = await r.text()
            assert r.status == 200 and "已恢复" in page
            assert field_value(page, "followup_day") == "4"
            assert "周主管" in page[page.index('id="history"'):]  # the audit trail, shown
        assert carebot.services.rules.journeys.followup_day == 4
        assert await other.services.setting_overrides.refresh()  # the job's check
        assert other.services.rules.journeys.followup_day == 4
        assert other.services.settings.quiet_hours == "22:00-08:00"  # still changed
        assert not await other.services.setting_overrides.refresh()  # nothing new: no reload
        assert (await AuditLog.get(action="setting.reset")).detail == {"value": ["5", "4"]}
    finally:
        await other.stop()


async def test_a_bad_value_is_explained_and_nothing_is_stored(app: tuple[str, Any]) -> None:
    base, carebot = app
    await add_staff("root", "admin", language="zh_CN")
    http = await signed_in(base, "root")
    async with http:
        token = await csrf(http, f"{base}/settings")
        async with http.post(f"{base}/settings", data={
                "_csrf": token, "group": "followup", "followup_day": "0",
                "followup_time": "25:99", "visit_day": "9"}) as r:
            page = await r.text()
        assert r.status == 422
        assert "未保存" in page
        assert "必须大于或等于 1" in page[page.index('id="setting-followup_day"'):]
        assert 'id="problem-followup_time"' in page
        # what was typed stays in the form, the good value too
        assert field_value(page, "followup_day") == "0"
        assert field_value(page, "followup_time") == "25:99"
        assert field_value(page, "visit_day") == "9"
        # a value only a feature's rules refuse: refused here as at start-up
        async with http.post(f"{base}/settings", data={
                "_csrf": token, "group": "complaints",
                "ticket_business_hours": "18:00-08:30"}) as r:
            page = await r.text()
            assert r.status == 422
            setting = page[page.index('id="setting-ticket_business_hours"'):]
            assert "格式不对" in setting and "open before they close" in setting
            assert field_value(page, "ticket_business_hours") == "18:00-08:30"
    assert not await SettingOverride.exists()
    assert not await AuditLog.filter(target__startswith="setting:").exists()
    assert carebot.services.settings.visit_day == 7  # all or nothing


async def test_only_what_is_safe_can_be_changed(app: tuple[str, Any]) -> None:
    base, carebot = app
    await add_staff("root", "admin")
    http = await signed_in(base, "root")
    async with http:
        async with http.get(f"{base}/settings") as r:
            page = await r.text()
        for name in ("bot_token", "database_url", "web_port", "webhook_url", "api_key",
                     "timezone", "scan_time"):
            assert f'name="{name}"' not in page
            assert f"CAREBOT_{name.upper()} in the environment file" in page
        token = await csrf(http, f"{base}/settings")
        async with http.post(f"{base}/settings", data={
                "_csrf": token, "group": "console", "web_port": "1"}) as r:
            assert r.status == 200 and "Nothing was changed" in await r.text()
        async with http.post(f"{base}/settings", data={
                "_csrf": token, "group": "telegram", "reset": "bot_token"}) as r:
            assert r.status == 400
    assert not await SettingOverride.exists()
    assert carebot.services.settings.web_port != 1


@pytest.mark.parametrize("role", ["agent", "advisor", "supervisor", "manager", "marketing"])
async def test_no_one_but_admins_sees_or_changes_settings(app: tuple[str, Any],
                                                          role: str) -> None:
    base, _ = app
    await add_staff(f"s-{role}", role)
    http = await signed_in(base, f"s-{role}")
    async with http:
        async with http.get(f"{base}/settings") as r:
            assert r.status == 403 and "CAREBOT_" not in await r.text()
        token = await csrf(http, f"{base}/")
        async with http.post(f"{base}/settings", data={
                "_csrf": token, "group": "dealership", "dealer_phone": "110"}) as r:
            assert r.status == 403
        async with http.post(f"{base}/settings", data={
                "group": "dealership", "dealer_phone": "110"}) as r:
            assert r.status == 403  # nor without the CSRF token
    assert not await SettingOverride.exists()


async def test_secrets_are_only_said_to_be_set(db: str, emulator: Any, clock: FakeClock
                                               ) -> None:
    from bot.app import create_app

    settings = make_settings(emulator, database_url=db, web_port=free_port(),
                             session_secret="session-secret-value-3", metrics_token="")
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.start(serve_web=True, receive_updates=False, schedule=False)
    base = f"http://127.0.0.1:{settings.web_port}"
    try:
        await add_staff("root", "admin")
        http = await signed_in(base, "root")
        async with http, http.get(f"{base}/settings") as r:
            page = await r.text()
        for value in ("session-secret-value-3", "test-api-key", "s3cret-hook", emulator.token):
            assert value not in page
        block = page[page.index('id="setting-api_key"'):]
        assert "In use: set" in re.sub(r"\s+", " ", block[:block.index("</div>")])
        block = page[page.index('id="setting-metrics_token"'):]
        assert "In use: not set" in re.sub(r"\s+", " ", block[:block.index("</div>")])
    finally:
        await carebot.stop()


def test_commands_run_by_hand_use_the_console_changes(tmp_path: Path, monkeypatch: Any,
                                                      capsys: Any) -> None:
    """carebot booking list (like import, report...) reads the console's changes after the
    environment, as the running service does."""
    monkeypatch.setenv("CAREBOT_DATABASE_URL", f"sqlite://{tmp_path}/cli.sqlite3")
    monkeypatch.setenv("CAREBOT_BOT_TOKEN", "")
    day = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    assert main(["booking", "list", "--day", day]) == 0
    assert "09:00-12:00" in capsys.readouterr().out  # the default slots

    async def change() -> None:
        await open_database(f"sqlite://{tmp_path}/cli.sqlite3")
        try:
            await SettingOverride.create(key="booking_slots", value="08:00-10:00,10:30-12:00",
                                         created_at=datetime.now(UTC))
        finally:
            await close_database()

    asyncio.run(change())
    assert main(["booking", "list", "--day", day]) == 0
    out = capsys.readouterr().out
    assert "08:00-10:00" in out and "10:30-12:00" in out and "09:00-12:00" not in out
