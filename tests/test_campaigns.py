"""Marketing campaigns end to end through the Telegram emulator, on a FakeClock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot import consent
from bot.campaigns import audiences, policy, promotions
from bot.campaigns.policy import CampaignError
from bot.handlers.marketing import is_stop_word
from bot.journeys.plans import CHECKIN
from db.models import (
    Campaign,
    CampaignStatus,
    ConsentRecord,
    Customer,
    Touchpoint,
    TouchpointStatus,
    Vehicle,
)
from tests.conftest import BotEnv

SH = ZoneInfo("Asia/Shanghai")
MESSAGE = "{{ customer.name }}您好，{{ dealer.name }}双十一保养特惠：工时费八折！"
UID = 700000


def local(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=SH)


def rules(env: BotEnv) -> policy.CampaignRules:
    return policy.campaign_rules(env.settings)


async def make_owners(env: BotEnv, n: int, *, start: int = 0, consent_given: bool = True,
                      linked: bool = True, language: str = "zh_CN") -> list[Customer]:
    """``n`` owners in one bulk insert, linked to emulator users ``UID + i``."""
    rows = []
    for i in range(start, start + n):
        uid = UID + i
        rows.append(Customer(
            name=f"车主{i}", phone=f"+86139{i:08d}", link_token=f"t{i}", language=language,
            telegram_user_id=uid if linked else None, telegram_chat_id=uid if linked else None,
            marketing_consent=consent_given,
        ))
        if linked:
            env.emu.user(uid, first_name=f"车主{i}")
    await Customer.bulk_create(rows, batch_size=1000)
    return await Customer.filter(phone__in=[c.phone for c in rows]).order_by("id")


async def new_campaign(env: BotEnv, **kw: Any) -> Campaign:
    values: dict[str, Any] = {
        "name": "双十一保养", "messages": {"zh_CN": MESSAGE, "en": "Hi {{ customer.name }}!"},
        "buttons": [{"kind": "interested"}, {"kind": "book"},
                    {"kind": "url", "url": "https://example.com/offer"}],
        "now": env.clock.now(), "dealer": {"name": env.settings.dealer_name,
                                           "phone": env.settings.dealer_phone},
    }
    values.update(kw)
    return await promotions.create_campaign(**values)


async def start_campaign(env: BotEnv, campaign: Campaign, at: datetime | None = None) -> None:
    await promotions.schedule_campaign(campaign, send_at=at or env.clock.now(),
                                       now=env.clock.now(), rules=rules(env))
    launched = await promotions.launch_due(now=env.clock.now(), rules=rules(env))
    assert campaign.id in launched


def campaign_texts(env: BotEnv, uid: int) -> list[str]:
    return [t for t in env.emu.user(uid).bot_texts() if "双十一" in t or t.startswith("Hi ")]


async def test_campaign_to_500_owners_excludes_and_counts(env: BotEnv) -> None:
    env.clock.set(local(2026, 11, 3, 10, 0))
    owners = await make_owners(env, 500)
    by_group = {"no_consent": owners[0:50], "opted_out": owners[50:80],
                "unreachable": owners[80:100], "capped": owners[100:130],
                "not_linked": owners[130:150]}
    await Customer.filter(id__in=[c.id for c in by_group["no_consent"]]).update(
        marketing_consent=False)
    for c in by_group["opted_out"]:
        await consent.withdraw(c, now=env.clock.now(), source="bot:text", wording="退订")
    await Customer.filter(id__in=[c.id for c in by_group["unreachable"]]).update(
        unreachable_at=env.clock.now())
    await Customer.filter(id__in=[c.id for c in by_group["not_linked"]]).update(
        telegram_chat_id=None, telegram_user_id=None)
    for c in by_group["capped"]:  # two offers already this week
        for k in (1, 2):
            await Touchpoint.create(customer_id=c.id, kind="campaign", occasion_key=f"old:{k}",
                                    priority=10, due_at=env.clock.now() - timedelta(days=k),
                                    status=TouchpointStatus.SENT,
                                    sent_at=env.clock.now() - timedelta(days=k))
    campaign = await new_campaign(env)
    await start_campaign(env, campaign)
    await campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENDING
    assert campaign.launch["targeted"] == 500
    assert campaign.launch["excluded"] == {"no_consent": 50, "opted_out": 30, "unreachable": 20,
                                           "capped": 30, "not_linked": 20}
    assert campaign.launch["queued"] == 350

    report = await env.tick()
    assert report.sent == 350 and report.failed == 0
    receivers = owners[150:]
    for c in receivers:
        texts = campaign_texts(env, c.telegram_user_id)  # type: ignore[arg-type]
        assert len(texts) == 1, c
        assert c.name in texts[0] and "退订" in texts[0]  # how to stop, every message
    for group in ("no_consent", "opted_out", "unreachable", "capped"):
        for c in by_group[group]:
            assert campaign_texts(env, UID + owners.index(c)) == [], group
    await env.tick()  # nothing twice
    assert sum(len(campaign_texts(env, c.telegram_user_id))  # type: ignore[arg-type]
               for c in receivers) == 350
    await promotions.finish_done(now=env.clock.now())
    stats = await promotions.stats(await Campaign.get(id=campaign.id))
    assert stats["status"] == "done"
    assert (stats["targeted"], stats["sent"], stats["failed"], stats["unreachable"]) == \
        (500, 350, 0, 0)
    assert sum(stats["excluded"].values()) == 150


async def test_buttons_and_footer_are_on_the_message(env: BotEnv) -> None:
    env.clock.set(local(2026, 11, 3, 10, 0))
    [owner] = await make_owners(env, 1, language="en")
    await start_campaign(env, await new_campaign(env))
    await env.tick()
    message = env.emu.user(UID).last_bot_message()
    assert "Hi 车主0!" in message["text"] and "STOP" in message["text"]
    rows = message["reply_markup"]["inline_keyboard"]
    labels = [b["text"] for row in rows for b in row]
    assert labels == ["I'm interested", "Book a visit", "Learn more", "Unsubscribe"]
    assert rows[2][0]["url"] == "https://example.com/offer"
    tp = await Touchpoint.get(kind="campaign")
    assert rows[1][0]["callback_data"] == f"bk:s:{tp.id}"  # the booking flow (issue 3)
    assert rows[3][0]["callback_data"].startswith("mk:")
    assert owner.language == "en"


async def test_quiet_hours_hold_a_campaign_and_it_resumes_after(env: BotEnv) -> None:
    env.clock.set(local(2026, 11, 3, 20, 0))
    await make_owners(env, 5)
    campaign = await new_campaign(env)
    await promotions.schedule_campaign(campaign, send_at=local(2026, 11, 3, 22, 0),
                                       now=env.clock.now(), rules=rules(env))  # quiet hours
    assert await promotions.launch_due(now=env.clock.now(), rules=rules(env)) == []
    env.clock.set(local(2026, 11, 3, 22, 0))
    assert await promotions.launch_due(now=env.clock.now(), rules=rules(env)) == [campaign.id]
    tps = await Touchpoint.filter(kind="campaign")
    assert len(tps) == 5
    assert all(tp.due_at == local(2026, 11, 4, 9, 0) for tp in tps)  # shifted out of quiet
    assert (await env.tick()).sent == 0
    env.clock.set(local(2026, 11, 4, 8, 59))
    assert (await env.tick()).sent == 0
    env.clock.set(local(2026, 11, 4, 9, 0))
    assert (await env.tick()).sent == 5


async def test_running_campaign_pauses_in_quiet_hours(env: BotEnv) -> None:
    env.clock.set(local(2026, 11, 3, 20, 59))
    await make_owners(env, 6)
    campaign = await new_campaign(env)
    await start_campaign(env, campaign)
    dispatcher = env.carebot.dispatcher
    dispatcher.settings = env.settings.model_copy(update={"dispatch_batch": 2})
    assert (await dispatcher.dispatch_due(max_batches=1)).sent == 2
    env.clock.set(local(2026, 11, 3, 21, 0))  # quiet hours start mid-campaign
    assert (await env.tick()).sent == 0
    env.clock.set(local(2026, 11, 4, 9, 0))
    assert (await env.tick()).sent == 4


async def test_pause_resume_and_cancel_mid_way(env: BotEnv) -> None:
    env.clock.set(local(2026, 11, 3, 10, 0))
    owners = await make_owners(env, 10)
    campaign = await new_campaign(env)
    await start_campaign(env, campaign)
    dispatcher = env.carebot.dispatcher
    dispatcher.settings = env.settings.model_copy(update={"dispatch_batch": 3})
    assert (await dispatcher.dispatch_due(max_batches=1)).sent == 3

    assert await promotions.pause(campaign, now=env.clock.now()) == 7
    assert (await env.tick()).sent == 0
    assert await Touchpoint.filter(status=TouchpointStatus.HELD).count() == 7
    assert await promotions.resume(campaign, now=env.clock.now()) == 7
    assert (await dispatcher.dispatch_due(max_batches=1)).sent == 3

    assert await promotions.cancel(campaign, now=env.clock.now()) == 4
    env.clock.advance(minutes=5)
    assert (await env.tick()).sent == 0
    received = sum(len(campaign_texts(env, c.telegram_user_id))  # type: ignore[arg-type]
                   for c in owners)
    assert received == 6
    stats = await promotions.stats(await Campaign.get(id=campaign.id))
    assert stats["status"] == "cancelled" and stats["sent"] == 6
    assert stats["not_sent"] == {"campaign cancelled": 4}
    with pytest.raises(CampaignError):
        await promotions.resume(campaign, now=env.clock.now())


async def test_cancel_or_pause_while_a_row_is_retried_after_429(env: BotEnv) -> None:
    from bot.delivery.dispatcher import claim_due

    env.clock.set(local(2026, 11, 3, 10, 0))
    await make_owners(env, 2)
    campaign = await new_campaign(env)
    await start_campaign(env, campaign)
    dispatcher = env.carebot.dispatcher
    now = env.clock.now()
    batch = await claim_due(now, limit=10, lease=timedelta(minutes=5))
    assert len(batch) == 2  # in flight: cancel cannot touch "sending" rows
    assert await promotions.cancel(campaign, now=now) == 0
    env.emu.fail_next("sendMessage", retry_after=3, count=2)
    assert (await dispatcher._send_batch(batch, now)).retried == 2  # back to pending
    env.clock.advance(seconds=5)
    assert (await env.tick()).sent == 0
    assert campaign_texts(env, UID) == [] and campaign_texts(env, UID + 1) == []
    assert await Touchpoint.filter(status=TouchpointStatus.SKIPPED,
                                   status_reason="campaign cancelled").count() == 2

    second = await new_campaign(env, name="second")
    await start_campaign(env, second)
    now = env.clock.now()
    batch = await claim_due(now, limit=10, lease=timedelta(minutes=5))
    await promotions.pause(second, now=now)
    env.emu.fail_next("sendMessage", retry_after=3, count=2)
    await dispatcher._send_batch(batch, now)
    env.clock.advance(seconds=5)
    assert (await env.tick()).sent == 0
    assert await Touchpoint.filter(occasion_key=policy.occasion_key(second.id),
                                   status=TouchpointStatus.HELD).count() == 2
    assert await promotions.resume(second, now=env.clock.now()) == 2
    assert (await env.tick()).sent == 2


async def test_cancel_between_launch_claim_and_insert_sends_nothing(env: BotEnv) -> None:
    env.clock.set(local(2026, 11, 3, 10, 0))
    await make_owners(env, 3)
    campaign = await new_campaign(env)
    await promotions.schedule_campaign(campaign, send_at=env.clock.now(), now=env.clock.now(),
                                       rules=rules(env))
    # launch_due's claim, then a cancel before launch writes any row
    assert await Campaign.filter(id=campaign.id, status=CampaignStatus.SCHEDULED).update(
        status=CampaignStatus.SENDING)
    claimed = await Campaign.get(id=campaign.id)
    assert await promotions.cancel(await Campaign.get(id=campaign.id),
                                   now=env.clock.now()) == 0
    await promotions.launch(claimed, now=env.clock.now(), rules=rules(env))
    assert (await env.tick()).sent == 0
    assert await Touchpoint.filter(status=TouchpointStatus.SKIPPED,
                                   status_reason="campaign cancelled").count() == 3
    assert (await Campaign.get(id=campaign.id)).status == CampaignStatus.CANCELLED
    # and when only the tick's skip rule sees them (rows written after launch re-read)
    await Touchpoint.filter(kind="campaign").update(status=TouchpointStatus.PENDING)
    assert (await env.tick()).sent == 0
    assert await Touchpoint.filter(status=TouchpointStatus.PENDING).count() == 0


async def test_unsubscribe_button_withdraws_consent_and_next_campaign_skips(env: BotEnv) -> None:
    env.clock.set(local(2026, 11, 3, 10, 0))
    owners = await make_owners(env, 2)
    first = await new_campaign(env)
    await start_campaign(env, first)
    await env.tick()
    owner = env.emu.user(UID)
    owner.press("退订")
    await env.poll()
    customer = await Customer.get(id=owners[0].id)
    assert customer.marketing_consent is False
    assert any("已为您退订" in t and "/subscribe" in t for t in owner.bot_texts())
    [record] = await ConsentRecord.filter(customer_id=customer.id)
    assert record.granted is False and record.source == "bot:unsubscribe"
    assert record.campaign_id == first.id and "退订" in record.wording
    stats = await promotions.stats(await Campaign.get(id=first.id))
    assert stats["pressed"]["unsubscribe"] == 1 and stats["unsubscribed_after"] == 1

    env.clock.advance(hours=1)
    second = await new_campaign(env, name="second")
    await start_campaign(env, second)
    await second.refresh_from_db()
    assert second.launch["excluded"]["opted_out"] == 1 and second.launch["queued"] == 1
    await env.tick()
    assert len(campaign_texts(env, UID)) == 1  # only the first campaign's message
    assert len(campaign_texts(env, UID + 1)) == 2


@pytest.mark.parametrize("word", ["退订", "TD", "stop", " STOP "])
async def test_typing_a_stop_word_unsubscribes(env: BotEnv, word: str) -> None:
    [owner] = await make_owners(env, 1)
    user = env.emu.user(UID)
    user.send_text(word)
    await env.poll()
    assert (await Customer.get(id=owner.id)).marketing_consent is False
    assert any("已为您退订" in t for t in user.bot_texts())
    assert await ConsentRecord.filter(customer_id=owner.id, granted=False,
                                      source="bot:text").count() == 1


def test_stop_words() -> None:
    assert is_stop_word("退订") and is_stop_word("td") and is_stop_word("Stop!")
    assert not is_stop_word("stop the car noise please")


async def test_subscribe_question_records_the_wording(env: BotEnv) -> None:
    [owner] = await make_owners(env, 1, consent_given=False)
    user = env.emu.user(UID)
    user.send_text("/subscribe")
    await env.poll()
    user.press("同意接收")
    await env.poll()
    customer = await Customer.get(id=owner.id)
    assert customer.marketing_consent is True
    [record] = await ConsentRecord.filter(customer_id=owner.id)
    assert record.granted and record.source == "bot:question"
    assert "每周最多 2 条" in record.wording


async def test_stop_command_marketing_only_is_on_record(env: BotEnv) -> None:
    [owner] = await make_owners(env, 1)
    user = env.emu.user(UID)
    user.send_text("/stop")
    await env.poll()
    user.press(env.carebot.scripts.label("stop_marketing_button", "zh_CN"))
    await env.poll()
    customer = await Customer.get(id=owner.id)
    assert customer.marketing_consent is False and customer.followups_refused is False
    [record] = await ConsentRecord.filter(customer_id=owner.id)
    assert not record.granted and record.source == "bot:/stop"


async def test_subscribe_after_stop_everything_says_followups_stay_stopped(env: BotEnv) -> None:
    [owner] = await make_owners(env, 1)
    user = env.emu.user(UID)
    user.send_text("/stop")
    await env.poll()
    user.press(env.carebot.scripts.label("stop_all_button", "zh_CN"))
    await env.poll()
    user.send_text("/subscribe")
    await env.poll()
    user.press("同意接收")
    await env.poll()
    customer = await Customer.get(id=owner.id)
    assert customer.marketing_consent is True and customer.followups_refused is True
    assert any("这一选择仍然有效" in t and env.settings.dealer_phone in t
               for t in user.bot_texts())
    count = await audiences.count_audience(audiences.Audience(), now=env.clock.now(),
                                            rules=rules(env))
    assert count.excluded["opted_out"] == 1 and count.eligible == 0


async def test_interested_press_tells_the_staff_chat(env: BotEnv) -> None:
    env.clock.set(local(2026, 11, 3, 10, 0))
    group = env.emu.group(-100777, "staff", is_forum=False)
    env.carebot.services.settings = env.settings.model_copy(update={"staff_chat_id": -100777})
    [owner] = await make_owners(env, 1)
    campaign = await new_campaign(env)
    await start_campaign(env, campaign)
    await env.tick()
    user = env.emu.user(UID)
    first = user.press("我感兴趣")
    await env.poll()
    # said once: the button leaves the message, the others stay
    shown = [b["text"] for m in user.bot_messages()
             for row in (m.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]
    assert "我感兴趣" not in shown and shown
    user.press_again(first)  # twice (a second device): recorded once, staff told once
    await env.poll()
    assert user.callback_answers[-1]["text"].startswith("这一步已经完成了")
    assert any("顾问会尽快与您联系" in t for t in user.bot_texts())
    told = [t for t in group.bot_texts() if "我感兴趣" in t]
    assert len(told) == 1 and owner.phone in told[0]
    stats = await promotions.stats(await Campaign.get(id=campaign.id))
    assert stats["pressed"] == {"interested": 1, "book": 0, "unsubscribe": 0}


async def test_event_less_than_14_days_ahead_is_refused_without_force(env: BotEnv) -> None:
    env.clock.set(local(2026, 11, 3, 10, 0))
    soon = await new_campaign(env, event_date="2026-11-13")
    with pytest.raises(CampaignError, match="must go out by 2026-10-30"):
        await promotions.schedule_campaign(soon, send_at=env.clock.now(), now=env.clock.now(),
                                           rules=rules(env))
    assert (await Campaign.get(id=soon.id)).status == CampaignStatus.DRAFT
    await promotions.schedule_campaign(soon, send_at=env.clock.now(), now=env.clock.now(),
                                       rules=rules(env), force_reason="manager approved")
    stored = await Campaign.get(id=soon.id)
    assert stored.status == CampaignStatus.SCHEDULED
    assert stored.force_reason == "manager approved"

    later = await new_campaign(env, event_date="2026-11-17")  # exactly 14 days: fine
    await promotions.schedule_campaign(later, send_at=env.clock.now(), now=env.clock.now(),
                                       rules=rules(env))
    assert (await Campaign.get(id=later.id)).force_reason == ""
    past = await new_campaign(env, event_date="2026-11-01")
    with pytest.raises(CampaignError, match="before the send time"):
        await promotions.schedule_campaign(past, send_at=env.clock.now(), now=env.clock.now(),
                                           rules=rules(env), force_reason="x")


async def test_bad_campaign_definitions_are_refused(env: BotEnv) -> None:
    with pytest.raises(CampaignError, match="zh_CN text is required"):
        await new_campaign(env, messages={"en": "hi"})
    with pytest.raises(CampaignError, match="does not render"):
        await new_campaign(env, messages={"zh_CN": "{{ customer.nmae }}"})
    with pytest.raises(CampaignError, match="at most 3"):
        await new_campaign(env, buttons=["interested", "book", "url", "url"])
    with pytest.raises(CampaignError, match="must start with http"):
        await new_campaign(env, buttons=[{"kind": "url", "url": "javascript:alert(1)"}])
    assert await Campaign.all().count() == 0


async def test_a_template_cannot_inject_markup_or_escape_the_sandbox(env: BotEnv) -> None:
    env.clock.set(local(2026, 11, 3, 10, 0))
    [owner] = await make_owners(env, 1)
    await Customer.filter(id=owner.id).update(name="<b>x</b>")
    with pytest.raises(CampaignError):
        await new_campaign(env, messages={"zh_CN": "{{ ''.__class__.__mro__ }}"})
    campaign = await new_campaign(env)
    await start_campaign(env, campaign)
    assert (await env.tick()).sent == 1
    assert "<b>x</b>" in env.emu.user(UID).bot_texts()[-1]  # shown literally, not bold


async def test_checkin_during_a_10000_message_campaign_goes_out_first(env: BotEnv) -> None:
    env.clock.set(local(2026, 11, 3, 10, 0))
    owners = await make_owners(env, 10_000)
    campaign = await new_campaign(env)
    await start_campaign(env, campaign)
    assert await Touchpoint.filter(kind="campaign").count() == 10_000
    dispatcher = env.carebot.dispatcher
    first = await dispatcher.dispatch_due(max_batches=2)  # the campaign is running
    assert first.sent == 2 * env.settings.dispatch_batch
    # a delivery's 2-hour check-in falls due now, for an owner far back in the campaign queue
    checkin_owner = owners[-1]
    car = await Vehicle.create(vin="LSVAU2180N2183294", model="星辰 S7", plate="粤A12345",
                               customer_id=checkin_owner.id,
                               delivered_at=env.clock.now() - timedelta(hours=2))
    checkin = await Touchpoint.create(customer_id=checkin_owner.id, vehicle_id=car.id,
                                      kind=CHECKIN, occasion_key="k", priority=0,
                                      due_at=env.clock.now(),
                                      expires_at=env.clock.now() + timedelta(hours=12),
                                      payload={"vin": car.vin, "delivered_on": "2026-11-03"})
    env.clock.advance(seconds=1)
    await dispatcher.dispatch_due(max_batches=1)  # the very next batch
    checkin = await Touchpoint.get(id=checkin.id)
    assert checkin.status == TouchpointStatus.SENT
    assert checkin.sent_at is not None
    assert checkin.sent_at - env.clock.now() < timedelta(seconds=5)
    sent_campaign = await Touchpoint.filter(kind="campaign", status=TouchpointStatus.SENT).count()
    assert sent_campaign < 3 * env.settings.dispatch_batch  # most of the campaign still waits
    assert any("两个小时" in t for t in env.emu.user(checkin_owner.telegram_user_id).bot_texts())  # type: ignore[arg-type]
    assert checkin.sent_at.astimezone(UTC) <= env.clock.now()


# --------------------------------------------------------------------------- HTTP API


async def test_campaign_api_lifecycle(env: BotEnv) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    env.clock.set(local(2026, 11, 3, 10, 0))
    await make_owners(env, 3)
    auth = {"Authorization": "Bearer test-api-key"}
    async with TestClient(TestServer(env.carebot.web_app)) as client:
        r = await client.get("/api/v1/campaigns")
        assert r.status == 401
        r = await client.get("/api/v1/openapi.json")
        doc = await r.json()
        assert r.status == 200 and doc["openapi"].startswith("3.")
        assert "post" in doc["paths"]["/api/v1/campaigns/{id}/schedule"]
        r = await client.post("/api/v1/campaigns", headers=auth,
                              json={"name": "x", "messages": {"en": "hi"}})
        assert r.status == 422 and "zh_CN" in (await r.json())["error"]
        assert "201" in doc["paths"]["/api/v1/campaigns"]["post"]["responses"]
        assert "200" not in doc["paths"]["/api/v1/campaigns"]["post"]["responses"]
        for bad in ({"messages": ["你好"]}, {"messages": "你好"},
                    {"messages": {"zh_CN": ["你好"]}},
                    {"messages": {"zh_CN": "hi"}, "buttons": [1]},
                    {"messages": {"zh_CN": "hi"}, "buttons": [["interested"]]},
                    {"messages": {"zh_CN": "hi"}, "buttons": [None]}):
            r = await client.post("/api/v1/campaigns", headers=auth, json={"name": "x", **bad})
            assert r.status == 422, bad
            assert (await r.json())["error"].startswith(("messages", "buttons")), bad
        r = await client.post("/api/v1/campaigns", headers=auth, json={
            "name": "冬季检测", "messages": {"zh_CN": MESSAGE},
            "buttons": ["interested"], "audience": {"languages": ["zh_CN"]},
        })
        assert r.status == 201
        cid = (await r.json())["id"]
        r = await client.post("/api/v1/campaigns/audience", headers=auth,
                              json={"languages": ["zh_CN"]})
        assert (await r.json())["eligible"] == 3
        r = await client.post(f"/api/v1/campaigns/{cid}/preview", headers=auth)
        body = await r.json()
        assert body["eligible"] == 3 and len(body["samples"]) == 3
        assert "车主0您好" in body["samples"][0]["text"]
        r = await client.post(f"/api/v1/campaigns/{cid}/schedule", headers=auth,
                              json={"send_at": "2026-11-03T10:00"})
        assert r.status == 200 and (await r.json())["status"] == "scheduled"
        await promotions.launch_due(now=env.clock.now(), rules=rules(env))
        assert (await env.tick()).sent == 3
        r = await client.get(f"/api/v1/campaigns/{cid}/stats", headers=auth)
        stats = await r.json()
        assert stats["sent"] == 3 and stats["status"] == "done"
        r = await client.post(f"/api/v1/campaigns/{cid}/pause", headers=auth)
        assert r.status == 422
        r = await client.get("/api/v1/campaigns/999", headers=auth)
        assert r.status == 404


async def test_api_test_send_reaches_the_staff_members_own_chat(env: BotEnv) -> None:
    """POST /api/v1/campaigns/{id}/test: the campaign, as an owner named like the staff
    member gets it in Chinese, marked as a test, with its buttons, in their own chat; an
    unknown staff member is a 422 that says what to send."""
    from aiohttp.test_utils import TestClient, TestServer

    from db.models import Staff, StaffRole

    env.clock.set(local(2026, 11, 3, 10, 0))
    staff_uid = UID + 99
    env.emu.user(staff_uid, first_name="王经理")
    await Staff.create(telegram_id=staff_uid, name="王经理", role=StaffRole.MARKETING)
    campaign = await new_campaign(env)
    auth = {"Authorization": "Bearer test-api-key"}
    async with TestClient(TestServer(env.carebot.web_app)) as client:
        r = await client.post(f"/api/v1/campaigns/{campaign.id}/test", headers=auth,
                              json={"staff": "nobody"})
        assert r.status == 422 and '{"staff":' in (await r.json())["error"]
        r = await client.post(f"/api/v1/campaigns/{campaign.id}/test", headers=auth,
                              json={"staff": "王经理"})
        assert r.status == 200 and (await r.json()) == {"sent_to": "王经理"}
    message = env.emu.user(staff_uid).last_bot_message()
    assert message["text"].startswith("【测试发送】王经理您好")
    rows = message["reply_markup"]["inline_keyboard"]
    assert rows[2][0]["url"] == "https://example.com/offer"
    assert rows[-1][0]["callback_data"].startswith(f"mk:{campaign.id}:")
    assert await Touchpoint.filter(kind="campaign").count() == 0  # nothing in the outbox


async def test_import_consent_column_is_recorded(env: BotEnv, tmp_path: Any) -> None:
    from bot.intake import import_deliveries_file
    from bot.journeys.plans import journey_rules
    from tests.test_walking_skeleton import vin

    path = tmp_path / "d.csv"
    path.write_text(
        "vin,owner_name,phone,delivered_at,营销同意\n"
        f"{vin('2183301')},张一,13800000001,2026-11-01 10:00,是\n"
        f"{vin('2183302')},李二,13800000002,2026-11-01 10:00,no\n"
        f"{vin('2183303')},王三,13800000003,2026-11-01 10:00,maybe\n", encoding="utf-8")
    result = await import_deliveries_file(path, rules=journey_rules(env.settings),
                                          now=env.clock.now())
    assert result.created == 3 and not result.errors
    assert any(w.field == "marketing_consent" and w.row == 4 for w in result.warnings)
    yes = await Customer.get(phone="+8613800000001")
    assert yes.marketing_consent and yes.marketing_consent_source == "import"
    [record] = await ConsentRecord.filter(customer_id=yes.id)
    assert record.granted and record.source == "import" and record.wording
    for phone in ("+8613800000002", "+8613800000003"):
        assert not (await Customer.get(phone=phone)).marketing_consent
    again = await import_deliveries_file(path, rules=journey_rules(env.settings),
                                         now=env.clock.now())
    assert not again.errors
    assert await ConsentRecord.filter(customer_id=yes.id).count() == 1  # unchanged: no record


@pytest.mark.parametrize("how", ["button", "text"])
async def test_reimport_does_not_resubscribe_an_owner_who_unsubscribed(env: BotEnv,
                                                                       how: str) -> None:
    env.clock.set(local(2026, 11, 3, 10, 0))
    [owner] = await make_owners(env, 1, consent_given=False)
    assert await consent.apply_import({owner.phone: True}, now=env.clock.now()) == 1
    user = env.emu.user(UID)
    if how == "button":
        await start_campaign(env, await new_campaign(env))
        assert (await env.tick()).sent == 1
        user.press("退订")
    else:
        user.send_text("退订")
    await env.poll()
    assert (await Customer.get(id=owner.id)).marketing_consent is False
    env.clock.advance(days=1)
    assert await consent.apply_import({owner.phone: True}, now=env.clock.now()) == 0
    customer = await Customer.get(id=owner.id)
    assert customer.marketing_consent is False and customer.marketing_consent_source != "import"
    records = await consent.history(owner.id)
    assert [(r.granted, r.source) for r in records] == [
        (True, "import"), (False, f"bot:{'unsubscribe' if how == 'button' else 'text'}")]
    # a later yes in the bot itself still counts
    await consent.grant(customer, now=env.clock.now(), source="bot:question", wording="w")
    assert (await Customer.get(id=owner.id)).marketing_consent is True


def test_cli_create_schedule_list_and_stats(tmp_path: Any, monkeypatch: Any,
                                            capsys: Any) -> None:
    from bot.cli import main

    monkeypatch.setenv("CAREBOT_DATABASE_URL", f"sqlite://{tmp_path}/cli.sqlite3")
    monkeypatch.setenv("CAREBOT_BOT_TOKEN", "")
    spec = tmp_path / "spec.toml"
    spec.write_text('name = "冬季检测"\nbuttons = ["interested"]\n[messages]\n'
                    'zh_CN = "{{ customer.name }}您好"\n[audience]\nmodels = ["星辰 S7"]\n',
                    encoding="utf-8")
    assert main(["campaign", "create", str(spec)]) == 0
    assert "campaign 1 created" in capsys.readouterr().out
    assert main(["campaign", "schedule", "1", "--at", "2099-01-01 10:00"]) == 0
    assert main(["campaign", "list"]) == 0
    assert "scheduled" in capsys.readouterr().out
    assert main(["campaign", "stats", "1"]) == 0
    assert '"status": "scheduled"' in capsys.readouterr().out
    assert main(["campaign", "pause", "7"]) == 1
    assert "no campaign 7" in capsys.readouterr().err
    assert main(["campaign", "audience", '{"colour": 1}']) == 1
    assert main(["tag", "add", "13800000001", "vip"]) == 1  # unknown owner: said, not crashed
    assert "no owner" in capsys.readouterr().err
