"""A script edited in the console is kept in the database and used by every running
instance without a restart (issue 18, point 4)."""

from __future__ import annotations

from pathlib import Path

from bot.texts import Scripts
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
