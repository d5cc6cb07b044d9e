"""A script edited in the console is kept in the database and used by every running
instance without a restart (issue 18, point 4)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.cli import main
from bot.texts import Scripts
from db.models import Customer
from db.setup import close_database, open_database
from tests.conftest import BotEnv
from tests.test_walking_skeleton import (
    VIN_A,
    delivery_row,
    import_file,
    link_by_contact,
    local,
    write_csv,
)

EDITED = "{{ customer.name }}，交车两个小时了，一切顺利吗？（本店新话术）"


async def test_a_script_edited_on_one_instance_is_used_by_another_without_restart(
        env: BotEnv, tmp_path: Path) -> None:
    env.clock.set(local(2026, 11, 3, 10, 30))
    await import_file(env, write_csv(tmp_path / "d.csv", [
        delivery_row(VIN_A, "13800138000", "2026-11-03 10:00")]))
    owner = await link_by_contact(env, 5001, "+8613800138000")
    running = env.carebot.services.scripts
    assert "本店新话术" not in running.render(
        "delivery_checkin",
        "zh_CN",
        customer={"name": "张伟"},
        vehicle={"model": "S7", "plate": ""},
        dealer={"name": "星辰汽车", "phone": "1"},
        payload={},
    )

    # another instance's console saves an edit: this instance was not told, nor restarted
    console = Scripts()
    await console.save("delivery_checkin", "zh_CN", EDITED, env.clock.now())
    assert console.source("delivery_checkin", "zh_CN") == (EDITED, "edited")

    env.clock.set(local(2026, 11, 3, 12, 0))
    report = await env.tick()  # the dispatcher's tick takes the edit up before rendering
    assert report.sent == 1
    assert owner.bot_texts()[-1] == "张伟，交车两个小时了，一切顺利吗？（本店新话术）"
    assert running.source("delivery_checkin", "zh_CN") == (EDITED, "edited")

    # reverted on the other instance: the packaged text again, here too (the job's refresh)
    await console.save("delivery_checkin", "zh_CN", None, env.clock.now())
    assert await running.refresh()
    assert running.source("delivery_checkin", "zh_CN")[1] == "builtin"  # type: ignore[index]
    assert not await running.refresh()  # nothing new: one read, no reload


def test_the_carebot_command_uses_the_consoles_edits(tmp_path: Path, monkeypatch: Any,
                                                     capsys: Any) -> None:
    """``carebot campaign preview`` (and test, and booking add) render with the scripts the
    running carebot uses: a footer edited in the console is the one the preview shows."""
    monkeypatch.setenv("CAREBOT_DATABASE_URL", f"sqlite://{tmp_path}/cli.sqlite3")
    monkeypatch.setenv("CAREBOT_BOT_TOKEN", "")
    monkeypatch.setenv("CAREBOT_LANGUAGE", "zh_CN")
    assert main(["import", "deliveries", str(write_csv(tmp_path / "d.csv", [
        delivery_row(VIN_A, "13800138000", "2026-10-01 10:00")]))]) == 0
    spec = tmp_path / "spec.toml"
    spec.write_text('name = "冬季检测"\nbuttons = ["interested"]\n[messages]\n'
                    'zh_CN = "{{ customer.name }}您好"\n[audience]\nmodels = ["星辰 S7"]\n',
                    encoding="utf-8")
    assert main(["campaign", "create", str(spec)]) == 0

    async def consenting_owner_and_an_edit() -> None:
        await open_database(f"sqlite://{tmp_path}/cli.sqlite3")
        try:
            await Customer.filter(phone="+8613800138000").update(
                telegram_user_id=5001, telegram_chat_id=5001, marketing_consent=True)
            await Scripts().save("campaign_footer", "zh_CN", "回复“退订”即可退订（本店页脚）",
                                 datetime.now(UTC))
        finally:
            await close_database()

    asyncio.run(consenting_owner_and_an_edit())
    capsys.readouterr()
    assert main(["campaign", "preview", "1"]) == 0
    samples = json.loads(capsys.readouterr().out)["samples"]
    assert [s["name"] for s in samples] == ["张伟"]
    assert "本店页脚" in samples[0]["text"]
