"""Canned replies (``bot.canned``): the starting library, finding a reply in the owner's
language, rendering only the known variables, and refusing anything else when saved."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot import canned
from bot.config import Settings
from db.models import CannedReply, Customer, Staff, Vehicle

NOW = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
SETTINGS = Settings(_env_file=None, dealer_name="星辰汽车",
                    dealer_phone="020-88886666")


def people(language: str = "en") -> tuple[Customer, Vehicle, Staff]:
    return (Customer(name="Li Lei", advisor="李娜", language=language),
            Vehicle(model="星辰 S7", plate="粤B67890"), Staff(name="王客服"))


@pytest.mark.parametrize("text,problem", [
    ("Hello {name}, your {car} ({plate})", None),
    ("Braces {{like this}} stay", None),
    ("Call {phone}", "canned.err.variable"),
    ("{name.__class__}", "canned.err.variable"),
    ("{name!r}", "canned.err.variable"),
    ("{name:>30}", "canned.err.variable"),
    ("{}", "canned.err.variable"),
    ("a { b", "canned.err.braces"),
    ("a } b", "canned.err.braces"),
    ("   ", "canned.err.empty_text"),
    ("x" * 3501, "canned.err.too_long"),
])
def test_only_plain_known_variables_pass(text: str, problem: str | None) -> None:
    found = [key for key, _ in canned.check_text(text)]
    assert found == ([problem] if problem else [])


def test_render_fills_the_variables_and_leaves_an_unchecked_text_alone() -> None:
    customer, vehicle, staff = people()
    reply = CannedReply(id=1, text="Hi {name}, {car} {plate} · {advisor} · {staff} · "
                                   "{dealer} {dealer_phone} {{x}}")
    assert canned.render(reply, customer, vehicle, staff, SETTINGS) == \
        "Hi Li Lei, 星辰 S7 粤B67890 · 李娜 · 王客服 · 星辰汽车 020-88886666 {x}"
    assert canned.render(CannedReply(id=2, text="{name}: no car"), customer, None, staff,
                         SETTINGS) == "Li Lei: no car"
    sneaky = CannedReply(id=3, text="{name.__class__} {phone}")  # written around the checks
    assert canned.render(sneaky, customer, vehicle, staff, SETTINGS) == sneaky.text


async def test_the_library_starts_with_defaults_once_and_finds_by_language(db: str) -> None:
    await canned.ensure_defaults(NOW)
    await canned.ensure_defaults(NOW)
    names = {(r.name, r.language) for r in await canned.library(NOW)}
    assert len(names) == len(canned.DEFAULTS) == await CannedReply.all().count()
    assert {"greeting", "insurance_quote", "booking_confirm", "thanks"} == {n for n, _ in names}
    for _, _, _, text in canned.DEFAULTS:
        assert canned.check_text(text) == []
    found = await canned.find(" Greeting ", "en")
    assert found is not None and found.language == "en"
    staff = await Staff.create(name="赵主管", role="supervisor")
    only_zh = await canned.save(reply=None, name="parts", language="zh_CN", title="",
                                text="{name}您好，配件到了", staff=staff, now=NOW)
    found = await canned.find("parts", "en")  # none in English: the Chinese one
    assert found is not None and found.id == only_zh.id
    assert [r.name for r in await canned.choices("en", NOW)] == \
        ["booking_confirm", "greeting", "insurance_quote", "parts", "thanks"]
    await canned.set_active(only_zh, False, staff, NOW)
    assert await canned.find("parts", "zh_CN") is None
    assert await canned.find("no such name!", "en") is None
    with pytest.raises(canned.CannedError) as refused:
        await canned.save(reply=None, name="Parts Two", language="fr", title="",
                          text="{phone}", staff=staff, now=NOW)
    assert [k for k, _ in refused.value.problems] == \
        ["canned.err.name", "canned.err.language", "canned.err.variable"]
