"""Console scripts: everyone with the permission reads; admins edit with validation,
preview and revert; the bot uses an edit at once (kept in the database, so every instance
does: tests/test_script_edits.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.clock import FakeClock
from bot.web.console.pages.scripts import safe_preview
from db.models import AuditLog, ScriptEdit
from tests.browser.conftest import add_staff, free_port
from tests.conftest import make_settings
from tests.test_console_access import (
    csrf,
    signed_in,
    site,  # noqa: F401 - the shared fixture
)


@pytest_asyncio.fixture
async def app(db: str, emulator: Any, clock: FakeClock, tmp_path: Path
              ) -> AsyncIterator[tuple[str, Any]]:
    from bot.app import create_app

    settings = make_settings(emulator, database_url=db, web_port=free_port(),
                             session_secret="s", scripts_dir=tmp_path / "ours")
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.start(serve_web=True, receive_updates=False, schedule=False)
    try:
        yield f"http://127.0.0.1:{settings.web_port}", carebot
    finally:
        await carebot.stop()


@pytest.mark.parametrize("role,read,edit", [
    ("agent", 403, 403), ("marketing", 200, 403), ("supervisor", 200, 403),
    ("admin", 200, 200)])
async def test_who_reads_and_who_edits(app: tuple[str, Any], role: str, read: int,
                                       edit: int, tmp_path: Path) -> None:
    base, _ = app
    await add_staff(f"s-{role}", role)
    http = await signed_in(base, f"s-{role}")
    async with http:
        async with http.get(f"{base}/scripts") as r:
            assert r.status == read
        async with http.get(f"{base}/scripts/zh_CN/birthday") as r:
            assert r.status == read
        token = await csrf(http, f"{base}/")
        async with http.post(f"{base}/scripts/zh_CN/birthday", data={
                "_csrf": token, "action": "save", "text": "生日快乐 {{ customer.name }}"}) as r:
            assert r.status == edit
    assert await ScriptEdit.exists(key="birthday", lang="zh_CN") == (edit == 200)
    assert not (tmp_path / "ours" / "zh_CN" / "birthday.html").exists()  # not a file


async def test_a_broken_template_is_refused_and_a_good_one_is_used_at_once(
        app: tuple[str, Any], tmp_path: Path) -> None:
    base, carebot = app
    await add_staff("root", "admin")
    path = tmp_path / "ours" / "zh_CN" / "birthday.html"
    http = await signed_in(base, "root")
    async with http:
        token = await csrf(http, f"{base}/scripts/zh_CN/birthday")
        for bad, why in (("{{ customer.name ", "syntax error"),
                         ("<b>{{ customer.name }}", "end tag"),
                         ("{{ nobody.knows }}", "undefined")):
            async with http.post(f"{base}/scripts/zh_CN/birthday", data={
                    "_csrf": token, "action": "save", "text": bad}) as r:
                assert r.status == 422 and why in await r.text()
        assert not await ScriptEdit.exists()
        async with http.post(f"{base}/scripts/zh_CN/birthday", data={
                "_csrf": token, "action": "preview",
                "text": "<b>{{ customer.name }}</b>，生日快乐！"}) as r:
            page = await r.text()
            assert r.status == 200 and "<b>王伟</b>，生日快乐！" in page  # sample owner
        assert not await ScriptEdit.exists()  # a preview writes nothing
        async with http.post(f"{base}/scripts/zh_CN/birthday", data={
                "_csrf": token, "action": "save",
                "text": "<b>{{ customer.name }}</b>，本店祝您生日快乐！"}) as r:
            assert r.status == 200
        edit = await ScriptEdit.get(key="birthday", lang="zh_CN")
        assert edit.text is not None and edit.text.startswith("<b>{{ customer.name }}</b>")
        text = carebot.services.scripts.render("birthday", "zh_CN", customer={"name": "李雷"},
                                               vehicle=None, dealer={}, payload={})
        assert text == "<b>李雷</b>，本店祝您生日快乐！"
        entry = await AuditLog.get(action="script.edit")
        assert entry.target == "script:zh_CN/birthday"
        async with http.post(f"{base}/scripts/zh_CN/birthday", data={
                "_csrf": token, "action": "revert"}) as r:
            assert r.status == 200
    assert carebot.services.scripts.source("birthday", "zh_CN")[1] == "builtin"
    assert not path.exists()
    text = carebot.services.scripts.render("birthday", "zh_CN",
                                           customer={"name": "李雷", "birthday_lunar": False},
                                           vehicle=None, dealer={"name": "星辰汽车", "phone": "1"},
                                           payload={"day": "2026-11-03"})
    assert "本店祝您" not in text


async def test_saving_needs_no_folder_of_our_own(site: str) -> None:  # noqa: F811
    await add_staff("root2", "admin")
    http = await signed_in(site, "root2")
    async with http:
        token = await csrf(http, f"{site}/scripts/en/birthday")
        async with http.post(f"{site}/scripts/en/birthday", data={
                "_csrf": token, "action": "save", "text": "Happy birthday!"}) as r:
            assert r.status == 200 and "without a restart" in await r.text()
        assert (await ScriptEdit.get(key="birthday", lang="en")).text == "Happy birthday!\n"
        async with http.post(f"{site}/scripts/en/birthday", data={
                "_csrf": token, "action": "revert"}) as r:
            assert r.status == 200
        async with http.post(f"{site}/scripts/en/birthday", data={
                "_csrf": token, "action": "revert"}) as r:
            assert r.status == 409  # nothing edited any more
        async with http.get(f"{site}/scripts/xx/birthday") as r:
            assert r.status == 404


def test_the_preview_lets_formatting_through_and_nothing_else() -> None:
    assert safe_preview("<b>王伟</b> & <i>x</i>") == "<b>王伟</b> &amp; <i>x</i>"
    assert safe_preview('<a href="javascript:alert(1)">x</a><script>') == \
        '&lt;a href="javascript:alert(1)"&gt;x&lt;/a&gt;&lt;script&gt;'

