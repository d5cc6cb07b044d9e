"""The owner's chat reads like a person (issue 18, point 6): the greeting and
self-introduction only when a new exchange starts, 先生/女士 where the manuals use it, the
dealer's sign-off on a line of its own, the sandbox's dealership named in Chinese."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import owners
from bot.config import Settings
from bot.handlers import staff as staff_side
from bot.salutation import address, parse_title, surname
from bot.sandbox.scene import DEMO_DEALER_NAME, sandbox_settings
from bot.script_check import _sample_customer, _sample_vehicle
from bot.texts import LANGUAGES, Scripts, greeting
from db.models import Customer, Direction, MessageLog
from tests.conftest import BotEnv
from tests.test_complaints import AGENT, complain, group, owner_with_car, tenv  # noqa: F401

DEALER = {"name": "星辰汽车", "phone": "020-88886666"}
TICKET = {"number": "T-0001", "category": "质量", "level": "客服专员", "resolution": "已更换",
          "due": "12:00", "first_hours": "2", "business": True}


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("key", ["ticket_claimed", "ticket_escalated", "ticket_reopened",
                                 "campaign_footer"])
def test_the_dealers_sign_off_is_a_line_of_its_own(key: str, lang: str) -> None:
    text = Scripts().render(key, lang, customer=_sample_customer(lang),
                            vehicle=_sample_vehicle(), dealer=DEALER, staff="王客服",
                            ticket=TICKET)
    last = text.rstrip().splitlines()[-1]
    assert last == "星辰汽车 · 020-88886666", (key, lang, text)
    # the sentence before it ends with its own punctuation, not the dealer's name
    before = [line for line in text.rstrip().splitlines()[:-1] if line.strip()]
    assert "020-88886666" not in before[-1]


class _Emu:
    token = "1:sandbox"
    api_url = "http://127.0.0.1:1/bot"


def test_the_sandbox_signs_with_a_chinese_demo_dealership_unless_one_is_set() -> None:
    emu: Any = _Emu()
    plain = sandbox_settings(Settings(_env_file=None), emu, "sqlite://:memory:")
    assert plain.dealer_name == DEMO_DEALER_NAME and "星辰" in plain.dealer_name
    own = sandbox_settings(Settings(_env_file=None, dealer_name="Acme Motors"), emu,
                           "sqlite://:memory:")
    assert own.dealer_name == "Acme Motors"


async def test_only_a_new_exchange_greets_and_introduces_the_sender(
    tenv: BotEnv, tmp_path: Path  # noqa: F811
) -> None:
    env = tenv
    owner = await owner_with_car(env, tmp_path)
    await Customer.filter(phone="+8613800138000").update(title="mr")
    await complain(env, owner, "维修质量", "刹车有异响")
    opened = owner.bot_texts()[-1]
    # the first script of the exchange: 先生 from the owner's title, and who writes
    assert opened.startswith("张先生您好！我是星辰汽车的客服专员。"), opened
    # the dialogue's finished steps keep no buttons: neither the category nor Submit
    for label in ("维修质量", "✅ 提交"):
        with pytest.raises(AssertionError):
            owner.press(label)

    # the owner's second message in the dialogue: the next script goes straight to the point
    env.clock.advance(minutes=10)
    owner.send_text("下午三点前都方便接电话")
    await env.poll()
    staff = group(env)
    thread = staff.topic_id("T-0001 · 张伟 · 粤A12345 · 质量")
    staff.press(AGENT, "🙋 认领", thread)
    await env.poll()
    claimed = owner.bot_texts()[-1]
    assert claimed.startswith("您的投诉 T-0001 正在由"), claimed
    assert "您好" not in claimed and "客服专员。" not in claimed

    # a day later nothing has been said for hours: a new exchange greets again
    env.clock.advance(hours=13)
    await staff_side.deadline_tick(env.carebot.services)
    later = owner.bot_texts()[-1]
    assert later.startswith("张先生您好！"), later


async def test_greeting_due_counts_what_was_said_not_the_dialogues_prompts(db: str) -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
    owner = await Customer.create(name="王芳", phone="+8613900000001", link_token="t1")
    assert await owners.greeting_due(owner.id, now, 12)
    await MessageLog.create(customer_id=owner.id, direction=Direction.OUT, chat_id=1,
                            kind="reply", text="请选择类别", created_at=now)
    await MessageLog.create(customer_id=owner.id, direction=Direction.IN, chat_id=1,
                            kind="text", text="你好", created_at=now)
    assert await owners.greeting_due(owner.id, now, 12)  # prompts and the owner's own words
    await MessageLog.create(customer_id=owner.id, direction=Direction.OUT, chat_id=1,
                            kind="delivery_checkin", text="王芳您好！", created_at=now)
    assert not await owners.greeting_due(owner.id, now + timedelta(hours=11), 12)
    assert await owners.greeting_due(owner.id, now + timedelta(hours=12, seconds=1), 12)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_scripts_mid_exchange_neither_greet_nor_introduce(lang: str) -> None:
    scripts = Scripts()
    customer = _sample_customer(lang)
    for key in ("followup_3d", "delivery_checkin", "ticket_opened", "ticket_claimed"):
        with greeting(False):
            text = scripts.render(key, lang, customer=customer, vehicle=_sample_vehicle(),
                                  dealer=DEALER, staff="王客服", ticket=TICKET, payload={})
        assert "王伟" not in text.splitlines()[0] and "客服专员。" not in text, (key, text)
        assert text[0].isupper() or not text[0].isascii(), text  # "Your complaint", not "your"


@pytest.mark.parametrize(("said", "title"), [("先生", "mr"), ("男", "mr"), ("Mr.", "mr"),
                                             ("女士", "ms"), ("女", "ms"), ("F", "ms"),
                                             ("", ""), ("  ", ""), ("老板", None)])
def test_an_imports_title_column_is_read(said: str, title: str | None) -> None:
    assert parse_title(said) == title


def test_the_address_uses_the_surname_and_the_title() -> None:
    assert surname("欧阳娜娜") == "欧阳" and surname("张伟") == "张"
    assert address("张伟", "mr", "zh_CN") == "张先生"
    assert address("欧阳娜娜", "ms", "zh_CN") == "欧阳女士"
    assert address("张伟", "", "zh_CN") == "张伟"  # not known: the bare name, as before
    assert address("John Smith", "mr", "en") == "Mr Smith"
    assert address("李娜", "ms", "en") == "Ms 李娜"


async def test_the_owner_chooses_their_title_with_slash_title(
    tenv: BotEnv, tmp_path: Path  # noqa: F811
) -> None:
    env = tenv
    owner = await owner_with_car(env, tmp_path)
    owner.send_text("/title")
    await env.poll()
    assert owner.bot_texts()[-1] == "我们该怎么称呼您？"
    owner.press("张女士")
    await env.poll()
    assert owner.bot_texts()[-1] == "好的，以后我们称呼您为张女士。"
    assert (await Customer.get(phone="+8613800138000")).title == "ms"
    owner.send_text("/title")
    await env.poll()
    owner.press("张伟（只称呼姓名）")
    await env.poll()
    assert (await Customer.get(phone="+8613800138000")).title == ""


async def test_the_imports_title_column_gives_先生_or_女士(db: str, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from bot.intake import import_deliveries_file
    from bot.journeys.plans import journey_rules
    from tests.test_walking_skeleton import vin

    path = tmp_path / "d.csv"
    path.write_text(
        "VIN,车主姓名,手机,交车时间,称呼\n"
        f"{vin('1000001')},张伟,13800138000,2026-11-01 10:00,先生\n"
        f"{vin('1000002')},欧阳娜娜,13900139000,2026-11-01 10:00,女\n"
        f"{vin('1000003')},李雷,13700137000,2026-11-01 10:00,\n"
        f"{vin('1000004')},韩梅梅,13600136000,2026-11-01 10:00,老板\n", encoding="utf-8")
    now = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    rules = journey_rules(Settings(_env_file=None))
    result = await import_deliveries_file(path, rules=rules, now=now)
    assert result.errors == []
    assert [w.field for w in result.warnings] == ["title"]  # 老板: kept as it was, said
    titles = {c.name: c.title for c in await Customer.all()}
    assert titles == {"张伟": "mr", "欧阳娜娜": "ms", "李雷": "", "韩梅梅": ""}
    scripts = Scripts()
    greeting_of = {}
    for customer in await Customer.all():
        text = scripts.render("delivery_checkin", "zh_CN", customer=customer,
                              vehicle=_sample_vehicle(),
                              dealer=DEALER, payload={})
        greeting_of[customer.name] = text.splitlines()[0].split("！")[0]
    assert greeting_of == {"张伟": "张先生您好", "欧阳娜娜": "欧阳女士您好", "李雷": "李雷您好",
                           "韩梅梅": "韩梅梅您好"}
    # a later file without the column (or with it empty) never erases the title
    path.write_text("VIN,车主姓名,手机,交车时间\n"
                    f"{vin('1000001')},张伟,13800138000,2026-11-01 10:00\n", encoding="utf-8")
    await import_deliveries_file(path, rules=rules, now=now)
    assert (await Customer.get(name="张伟")).title == "mr"


def test_a_campaign_message_is_one_language_footer_and_buttons_included() -> None:
    from bot.campaigns.content import compose_campaign
    from db.models import Campaign

    campaign = Campaign(id=7, name="双十一", messages={"zh_CN": "{{ customer.name }}，保养八折！"},
                        buttons=[{"kind": "interested"}])
    english = _sample_customer("en")  # reads English; the campaign has only Chinese
    out = compose_campaign(campaign, english, None, Scripts(),
                           Settings(_env_file=None, dealer_name="星辰汽车"))
    assert out.text.startswith("王伟，保养八折！")
    assert "退订" in out.text and "Unsubscribe" not in out.text  # the footer follows the body
    labels = [label for row in out.buttons for label, _ in row]
    assert labels and not any(label.isascii() for label in labels), labels  # 我感兴趣, 退订
