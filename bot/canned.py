"""Canned replies: the dealer's library of ready answers, picked by a short name.

One row per short name and language (``greeting`` in zh_CN and in en). A text takes a few
variables — ``{name}`` (the owner), ``{car}``, ``{plate}``, ``{advisor}``, ``{dealer}``,
``{dealer_phone}``, ``{staff}`` — filled with plain ``str.format_map`` over exactly those
values: a variable not in the list, an attribute or index (``{name.upper}``) or a stray
brace is refused when the reply is saved, and a text that is somehow wrong anyway is sent as
written rather than formatted. Nothing is evaluated, so a reply is safe by construction.

The console's picker and ``/r <name>`` in a conversation's topic both use :func:`find` and
:func:`render`; the owner gets the reply in their own language (Chinese when the library
has none in theirs).
"""

from __future__ import annotations

import logging
import re
import string
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError

from bot.config import Settings
from bot.texts import LANGUAGES
from db.models import CannedReply, Customer, Staff, Vehicle

log = logging.getLogger(__name__)

FALLBACK = "zh_CN"
VARIABLES = ("name", "car", "plate", "advisor", "dealer", "dealer_phone", "staff")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
TITLE_LIMIT = 100
TEXT_LIMIT = 3500  # room for the signature under Telegram's 4096 characters

#: written once, when the library is first used and still empty: (name, language, title, text)
DEFAULTS: tuple[tuple[str, str, str, str], ...] = (
    ("greeting", "zh_CN", "问候",
     "{name}您好！我是{dealer}的{staff}，很高兴为您服务。请问有什么可以帮您？"),
    ("greeting", "en", "Greeting",
     "Hello {name}, this is {staff} from {dealer}. How can I help you?"),
    ("insurance_quote", "zh_CN", "续保报价跟进",
     ("{name}您好！您的{car}（{plate}）续保报价已为您准备好，我稍后把详细方案发给您；"
      "方便的话也可以致电 {dealer_phone} 与我们联系。")),
    ("insurance_quote", "en", "Insurance quote follow-up",
     ("Hello {name}, the insurance renewal quote for your {car} ({plate}) is ready; I will "
      "send you the details shortly. You can also call us on {dealer_phone}.")),
    ("booking_confirm", "zh_CN", "预约确认",
     ("{name}您好！已为您的{car}（{plate}）预约到店，到店时报车牌即可，"
      "您的服务顾问{advisor}会接待您。如需改期请致电 {dealer_phone}。")),
    ("booking_confirm", "en", "Booking confirmation",
     ("Hello {name}, your {car} ({plate}) is booked in. Just give your plate at the desk; "
      "your service advisor {advisor} will look after you. To change the date, call "
      "{dealer_phone}.")),
    ("thanks", "zh_CN", "感谢",
     "感谢您的耐心，{name}！如还有问题，随时在这里留言或致电 {dealer_phone}。"),
    ("thanks", "en", "Thank you",
     ("Thank you for your patience, {name}! If anything else comes up, write here any time "
      "or call {dealer_phone}.")),
)


@dataclass
class CannedError(ValueError):
    """A reply that cannot be saved: each problem as (catalogue key, its values)."""

    problems: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __str__(self) -> str:
        return ", ".join(key for key, _ in self.problems)


def check_text(text: str) -> list[tuple[str, dict[str, Any]]]:
    """What is wrong with a reply's text: empty, too long, a stray brace, a variable not in
    :data:`VARIABLES`, or anything but a plain ``{variable}`` (no attribute, index,
    conversion or format). Empty when it may be saved."""
    if not text.strip():
        return [("canned.err.empty_text", {})]
    if len(text) > TEXT_LIMIT:
        return [("canned.err.too_long", {"limit": TEXT_LIMIT})]
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError:
        return [("canned.err.braces", {})]
    problems: list[tuple[str, dict[str, Any]]] = []
    for _, field_name, spec, conversion in parts:
        if field_name is None:
            continue
        if field_name not in VARIABLES or spec or conversion:
            problems.append(("canned.err.variable", {
                "variable": "{" + field_name + "}",
                "known": " ".join("{" + v + "}" for v in VARIABLES)}))
    return problems


def values(customer: Customer, vehicle: Vehicle | None, staff: Staff,
           settings: Settings) -> dict[str, str]:
    """Every variable's value for this owner, car and staff member (empty when unknown)."""
    return {
        "name": customer.name,
        "car": vehicle.model if vehicle is not None else "",
        "plate": vehicle.plate if vehicle is not None else "",
        "advisor": customer.advisor,
        "dealer": settings.dealer_name,
        "dealer_phone": settings.dealer_phone,
        "staff": staff.name,
    }


def render(reply: CannedReply, customer: Customer, vehicle: Vehicle | None, staff: Staff,
           settings: Settings) -> str:
    """The reply's text for this owner: its variables filled in."""
    if check_text(reply.text):  # saved before the rules, or edited in the database
        log.warning("canned reply %s has a text that is not checked: sent as written",
                    reply.id)
        return reply.text
    return reply.text.format_map(values(customer, vehicle, staff, settings))


async def ensure_defaults(now: datetime) -> None:
    """The starting library, written once when there is none (another instance writing it
    at the same moment is fine: the unique short name per language keeps one)."""
    if await CannedReply.exists():
        return
    try:
        await CannedReply.bulk_create([
            CannedReply(name=name, language=lang, title=title, text=text, updated_at=now)
            for name, lang, title, text in DEFAULTS])
    except IntegrityError:
        log.info("canned replies: the defaults were written meanwhile")


async def library(now: datetime, *, active_only: bool = False) -> list[CannedReply]:
    """Every reply, by short name then language."""
    await ensure_defaults(now)
    rows = CannedReply.filter(active=True) if active_only else CannedReply.all()
    return list(await rows.order_by("name", "language"))


async def find(name: str, language: str) -> CannedReply | None:
    """The active reply with this short name in ``language``, else in Chinese; None if
    there is none (or it is switched off)."""
    key = name.strip().lower()
    if not NAME.match(key):
        return None
    rows = await CannedReply.filter(name=key, active=True,
                                    language__in=(language, FALLBACK)).all()
    return next((r for r in rows if r.language == language), None) or \
        next((r for r in rows if r.language == FALLBACK), None)


async def choices(language: str, now: datetime) -> list[CannedReply]:
    """What a picker offers for an owner of ``language``: each active short name once, in
    their language where the library has it, else in Chinese."""
    chosen: dict[str, CannedReply] = {}
    for reply in await library(now, active_only=True):
        if reply.language == language or (reply.language == FALLBACK
                                          and reply.name not in chosen):
            chosen[reply.name] = reply
    return [chosen[name] for name in sorted(chosen)]


async def save(*, reply: CannedReply | None, name: str, language: str, title: str,
               text: str, staff: Staff, now: datetime) -> CannedReply:
    """Create (``reply`` None) or change a reply; :class:`CannedError` says what is wrong
    (nothing is written then)."""
    name = name.strip().lower()
    title = title.strip()
    text = text.replace("\r\n", "\n").strip()
    problems: list[tuple[str, dict[str, Any]]] = []
    if not NAME.match(name):
        problems.append(("canned.err.name", {}))
    if language not in LANGUAGES:
        problems.append(("canned.err.language", {}))
    if len(title) > TITLE_LIMIT:
        problems.append(("canned.err.title", {"limit": TITLE_LIMIT}))
    problems += check_text(text)
    if not problems:
        taken = CannedReply.filter(name=name, language=language)
        if reply is not None:
            taken = taken.exclude(id=reply.id)
        if await taken.exists():
            problems.append(("canned.err.taken", {"name": name}))
    if problems:
        raise CannedError(problems)
    row = reply or CannedReply(active=True)
    row.name, row.language, row.title, row.text = name, language, title, text
    row.updated_by_id, row.updated_at = staff.id, now
    try:
        await row.save()
    except IntegrityError:  # the same name and language saved meanwhile
        raise CannedError([("canned.err.taken", {"name": name})]) from None
    return row


async def set_active(reply: CannedReply, active: bool, staff: Staff,
                     now: datetime) -> CannedReply:
    reply.active = active
    reply.updated_by_id, reply.updated_at = staff.id, now
    await reply.save(update_fields=["active", "updated_by_id", "updated_at"])
    return reply
