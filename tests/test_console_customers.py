"""Console customers: search by every key, scoped files, edits with audit, consents."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.campaigns.audiences import count_audience, parse_audience
from bot.campaigns.policy import campaign_rules
from bot.clock import FakeClock
from bot.consent import IMPORT_WORDING
from db.models import AuditLog, ConsentRecord, Customer, Touchpoint, Vehicle
from tests.browser.conftest import add_staff
from tests.conftest import make_settings
from tests.test_console_access import csrf, signed_in, site  # noqa: F401 - fixture

DELIVERED = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)


async def seed() -> dict[str, Customer]:
    """Four owners: two of advisor 李娜, one of 王强, one with no advisor."""
    people = {}
    for key, name, phone, advisor, vin, plate in (
        ("zhang", "张伟", "+8613800138000", "李娜", "LSVAU2180T0000011", "粤A12345"),
        ("zhang2", "张丽", "+8613900139000", "李娜", "LSVAU2180T0000022", "粤B67890"),
        ("wang", "王芳", "+8613700137000", "王强", "LSVAU2180T0000033", "沪A·D1234"),
        ("liu", "刘洋", "+8613600136000", "", "LSVAU2180T0000044", ""),
    ):
        c = await Customer.create(name=name, phone=phone, advisor=advisor, link_token=key,
                                  marketing_consent=True, telegram_chat_id=None)
        await Vehicle.create(vin=vin, plate=plate.replace("·", ""), model="星辰 S7",
                             customer=c, delivered_at=DELIVERED)
        people[key] = c
    return people


async def found(http, base: str, q: str) -> list[str]:  # type: ignore[no-untyped-def]
    import re

    async with http.get(f"{base}/customers", params={"q": q}) as r:
        assert r.status == 200
        return re.findall(r'<a href="/customers/\d+">([^<]+)</a>', await r.text())


@pytest.mark.parametrize("q,names", [
    ("张", ["张丽", "张伟"]),  # a name prefix
    ("张伟", ["张伟"]),
    ("138 0013 8000", ["张伟"]),  # a phone as staff type it
    ("+86 139-0013-9000", ["张丽"]),
    ("LSVAU2180T0000033", ["王芳"]),  # a full VIN
    ("0000044", ["刘洋"]),  # a VIN tail
    ("lsvau2180t0000011", ["张伟"]),  # lower case
    ("粤A 12345", ["张伟"]),  # a plate with a space
    ("沪A·D1234", ["王芳"]),
    ("赵", []),
])
async def test_search_by_name_phone_vin_and_plate(site: str, q: str,  # noqa: F811
                                                  names: list[str]) -> None:
    await seed()
    await add_staff("boss", "manager")
    http = await signed_in(site, "boss")
    async with http:
        assert await found(http, site, q) == names


async def test_an_advisor_sees_only_their_own_customers(site: str) -> None:  # noqa: F811
    people = await seed()
    await add_staff("lina", "advisor", name="李娜")
    http = await signed_in(site, "lina")
    async with http:
        assert await found(http, site, "") == ["张丽", "张伟"]
        assert await found(http, site, "王芳") == []
        async with http.get(f"{site}/customers/{people['zhang'].id}") as r:
            assert r.status == 200 and "LSVAU2180T0000011" in await r.text()
        async with http.get(f"{site}/customers/{people['wang'].id}") as r:
            assert r.status == 403
        token = await csrf(http, f"{site}/customers")
        async with http.post(f"{site}/customers/{people['zhang'].id}", data={
                "_csrf": token, "action": "contact", "name": "张三", "phone": "13800138000",
                "language": "zh_CN"}) as r:
            assert r.status == 403  # an advisor reads; supervisors edit
    assert (await Customer.get(id=people["zhang"].id)).name == "张伟"


@pytest.mark.parametrize("role,status", [("agent", 200), ("advisor", 200),
                                         ("supervisor", 200), ("manager", 200),
                                         ("admin", 200), ("marketing", 403)])
async def test_who_opens_customers(site: str, role: str, status: int) -> None:  # noqa: F811
    await add_staff(f"c-{role}", role)
    http = await signed_in(site, f"c-{role}")
    async with http, http.get(f"{site}/customers") as r:
        assert r.status == status


async def test_edit_contact_details_with_audit_and_clear_errors(site: str) -> None:  # noqa: F811
    people = await seed()
    await add_staff("sup", "supervisor", name="赵主管")
    cid = people["zhang"].id
    http = await signed_in(site, "sup")
    async with http:
        token = await csrf(http, f"{site}/customers/{cid}")
        async with http.post(f"{site}/customers/{cid}", data={
                "_csrf": token, "action": "contact", "name": "张伟", "phone": "12345",
                "language": "en", "birthday": "1985-03-12"}) as r:
            page = await r.text()
            assert r.status == 422 and 'id="error-phone"' in page
            assert 'value="12345"' in page  # what was typed is kept on the form
        async with http.post(f"{site}/customers/{cid}", data={
                "_csrf": token, "action": "contact", "name": "张伟", "phone": "13900139000",
                "language": "zh_CN"}) as r:
            assert r.status == 422 and 'id="error-phone"' in await r.text()  # someone else's
        c = await Customer.get(id=cid)
        assert (c.phone, c.language, c.birthday) == ("+8613800138000", "zh_CN", None)
        async with http.post(f"{site}/customers/{cid}", data={
                "_csrf": token, "action": "contact", "name": "张伟", "phone": "137 1111 2222",
                "language": "en", "birthday": "1985-03-12"}) as r:
            assert r.status == 200
            page = await r.text()
        assert "edited the file" in page and "+8613800138000 → +8613711112222" in page
    c = await Customer.get(id=cid)
    assert (c.phone, c.language, c.birthday, c.birthday_md) == (
        "+8613711112222", "en", date(1985, 3, 12), "G0312")
    entry = await AuditLog.get(target=f"customer:{cid}")
    assert entry.detail["phone"] == ["+8613800138000", "+8613711112222"]
    assert entry.staff_id is not None


async def test_consent_withdrawn_in_the_console_excludes_the_owner(
        site: str, emulator, clock: FakeClock) -> None:  # noqa: F811
    people = await seed()
    await add_staff("mgr", "manager")
    cid = people["liu"].id
    await Customer.filter(id=cid).update(telegram_chat_id=9001, telegram_user_id=9001)
    rules = campaign_rules(make_settings(emulator))
    audience = parse_audience({"models": ["星辰 S7"]})
    before = await count_audience(audience, now=clock.now(), rules=rules)
    http = await signed_in(site, "mgr")
    async with http:
        token = await csrf(http, f"{site}/customers/{cid}")
        async with http.post(f"{site}/customers/{cid}", data={
                "_csrf": token, "action": "consent_withdraw", "basis": ""}) as r:
            assert r.status == 422  # a basis is required
        assert (await Customer.get(id=cid)).marketing_consent
        async with http.post(f"{site}/customers/{cid}", data={
                "_csrf": token, "action": "consent_withdraw",
                "basis": "客户来电要求不再接收优惠"}) as r:
            assert r.status == 200
    record = await ConsentRecord.filter(customer_id=cid).order_by("-id").first()
    assert record is not None and not record.granted
    assert record.source == "console:mgr" and "客户来电要求不再接收优惠" in record.wording
    after = await count_audience(audience, now=clock.now(), rules=rules)
    assert after.eligible == before.eligible - 1
    assert await AuditLog.filter(action="consent.withdraw", target=f"customer:{cid}").exists()


async def test_resume_followups_and_the_timeline(site: str, clock: FakeClock) -> None:  # noqa: F811
    people = await seed()
    await add_staff("mgr2", "manager")
    cid = people["wang"].id
    await Customer.filter(id=cid).update(followups_refused=True, followups_refused_at=clock.now())
    await Touchpoint.create(customer_id=cid, kind="followup_3d", occasion_key="v1",
                            due_at=clock.now(), status="skipped", status_reason="followups refused")
    http = await signed_in(site, "mgr2")
    async with http:
        async with http.get(f"{site}/customers/{cid}") as r:
            page = await r.text()
            assert "3-day follow-up (survey)" in page and "followups refused" in page
        token = await csrf(http, f"{site}/customers/{cid}")
        async with http.post(f"{site}/customers/{cid}", data={
                "_csrf": token, "action": "followups_resume", "basis": "客户来电要求恢复"}) as r:
            assert r.status == 200
    assert not (await Customer.get(id=cid)).followups_refused
    assert await AuditLog.filter(action="followups.resume").exists()


async def test_consent_records_and_changes_read_in_chinese(site: str) -> None:  # noqa: F811
    """Not "marketing_consent: False → True" nor "granted by … in the console" (issue 18,
    point 1): the fixed forms the records keep are said in the reader's words."""
    people = await seed()
    await add_staff("mgr", "manager", name="钱经理", language="zh_CN")
    cid = people["liu"].id
    await ConsentRecord.create(customer_id=cid, granted=True, source="import",
                               wording=IMPORT_WORDING, created_at=DELIVERED)
    http = await signed_in(site, "mgr")
    async with http:
        token = await csrf(http, f"{site}/customers/{cid}")
        async with http.post(f"{site}/customers/{cid}", data={
                "_csrf": token, "action": "consent_withdraw",
                "basis": "客户来电要求不再接收优惠"}) as r:
            assert r.status == 200
        async with http.post(f"{site}/customers/{cid}", data={
                "_csrf": token, "action": "contact", "name": "刘洋", "phone": "137 1111 2222",
                "language": "zh_CN"}) as r:
            page = await r.text()
    assert "由钱经理在控制台记录撤回：客户来电要求不再接收优惠" in page
    assert "控制台（mgr）" in page and "经销店的导入文件注明车主同意接收营销信息。" in page
    assert "同意接收营销信息：是 → 否" in page and "依据：客户来电要求不再接收优惠" in page
    assert "手机号：" in page and "→ +8613711112222" in page
    records = page[page.index('id="consent-history"'):]  # the history and the audit after it
    for english in ("marketing_consent", "in the console", "basis", "import:", "phone:"):
        assert english not in records, english
