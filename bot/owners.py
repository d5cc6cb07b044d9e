"""Owners and their Telegram link: plain values in, plain results out (no Telegram types)."""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.consent import withdraw
from bot.phones import DEFAULT_REGION, PhoneError, normalize_phone
from db.models import Conversation, Customer, Direction, MessageLog, Vehicle

log = logging.getLogger(__name__)

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class LinkOutcome(StrEnum):
    LINKED = "linked"
    NOT_OWN_CONTACT = "not_own_contact"
    UNKNOWN_PHONE = "unknown_phone"
    BAD_TOKEN = "bad_token"


@dataclass(frozen=True)
class LinkResult:
    outcome: LinkOutcome
    customer: Customer | None = None


def phone_to_e164(raw: str, region: str = DEFAULT_REGION) -> str | None:
    """A number staff typed, any way, as the import stores it, or None. Without a country
    code it is read in the default region first, as the import reads it (15827469031 is
    the mobile +86 158..., though its digits also make the +1 582... of North America),
    then as international digits without the '+' (8613800138000)."""
    return _first_valid(raw, region, international_first=False)


def contact_to_e164(raw: str, region: str = DEFAULT_REGION) -> str | None:
    """Telegram sends a shared contact's number as international digits without '+'
    ("8613800138000", "15551234567"): read as international first, else in the region."""
    return _first_valid(raw, region, international_first=True)


def _first_valid(raw: str, region: str, *, international_first: bool) -> str | None:
    text = raw.strip()
    if text.startswith("+"):
        candidates = [text]
    else:
        candidates = ["+" + text, text] if international_first else [text, "+" + text]
    for candidate in candidates:
        try:
            return normalize_phone(candidate, region)
        except PhoneError:
            continue
    return None


def new_link_token() -> str:
    """Unguessable, and fits a /start payload (at most 64 of A-Za-z0-9_-)."""
    return secrets.token_urlsafe(24)


async def _link(customer: Customer, user_id: int, chat_id: int, now: datetime) -> Customer:
    """Attach a Telegram account to an owner file. One account belongs to one file."""
    await Customer.filter(telegram_user_id=user_id).exclude(id=customer.id).update(
        telegram_user_id=None, telegram_chat_id=None
    )
    customer.telegram_user_id = user_id
    customer.telegram_chat_id = chat_id
    customer.linked_at = now
    customer.unreachable_at = None  # they are talking to us: reachable again
    customer.link_token = new_link_token()  # a link works once: a forwarded one is dead
    await customer.save(
        update_fields=["telegram_user_id", "telegram_chat_id", "linked_at", "unreachable_at",
                       "link_token", "updated_at"]
    )
    await Conversation.filter(telegram_user_id=user_id).delete()
    return customer


async def link_by_token(token: str, *, user_id: int, chat_id: int, now: datetime) -> LinkResult:
    """The deep link ``t.me/<bot>?start=<token>`` carries the owner's unguessable token."""
    if not TOKEN_RE.match(token):
        return LinkResult(LinkOutcome.BAD_TOKEN)
    customer = await Customer.get_or_none(link_token=token)
    if customer is None:
        return LinkResult(LinkOutcome.BAD_TOKEN)
    if customer.telegram_user_id not in (None, user_id):
        # The file belongs to another Telegram account: a link alone must not take it over.
        # The owner's own phone number (shared contact) still can.
        log.warning("deep link for customer %s used by another Telegram user", customer.id)
        return LinkResult(LinkOutcome.BAD_TOKEN)
    return LinkResult(LinkOutcome.LINKED, await _link(customer, user_id, chat_id, now))


async def link_by_contact(
    phone: str, *, contact_user_id: int | None, sender_id: int, chat_id: int, now: datetime
) -> LinkResult:
    """A shared contact links only if it is the sender's own (contact.user_id == sender)."""
    if contact_user_id != sender_id:
        return LinkResult(LinkOutcome.NOT_OWN_CONTACT)
    e164 = contact_to_e164(phone)
    customer = await Customer.get_or_none(phone=e164) if e164 else None
    if customer is None:
        return LinkResult(LinkOutcome.UNKNOWN_PHONE)
    return LinkResult(LinkOutcome.LINKED, await _link(customer, sender_id, chat_id, now))


async def customer_for_user(user_id: int) -> Customer | None:
    return await Customer.get_or_none(telegram_user_id=user_id)


async def set_conversation(user_id: int, state: str, data: dict[str, object] | None = None) -> None:
    """One upsert statement: an owner's state is written on most replies, and two
    transactions (look up, then insert or update) cost several round trips to the database."""
    await Conversation.bulk_create(
        [Conversation(telegram_user_id=user_id, state=state, data=data or {})],
        on_conflict=["telegram_user_id"], update_fields=["state", "data", "updated_at"],
    )


async def get_conversation(user_id: int) -> Conversation | None:
    return await Conversation.get_or_none(telegram_user_id=user_id)


async def stop_marketing(customer: Customer, *, now: datetime, source: str,
                         wording: str = "/stop: marketing only") -> None:
    """Withdraw marketing consent, kept on record (bot.consent, issue 6)."""
    await withdraw(customer, now=now, source=source, wording=wording)


async def stop_followups(customer: Customer, *, now: datetime, source: str) -> None:
    """The owner declined follow-ups: nothing more but what they ask for themselves."""
    await stop_marketing(customer, now=now, source=source, wording="/stop: every follow-up")
    customer.followups_refused = True
    customer.followups_refused_at = now
    await customer.save(update_fields=["followups_refused", "followups_refused_at", "updated_at"])


async def mark_reachable(user_id: int, *, blocked: bool, now: datetime) -> bool:
    """Telegram told us the owner blocked (or unblocked) the bot; True if it is an owner."""
    value = now if blocked else None
    return bool(await Customer.filter(telegram_user_id=user_id).update(unreachable_at=value))


async def set_language(customer: Customer, language: str) -> None:
    customer.language = language
    await customer.save(update_fields=["language", "updated_at"])


async def set_title(customer: Customer, title: str) -> None:
    """How scripts address the owner from now on ("mr", "ms" or "" for the name only)."""
    customer.title = title
    await customer.save(update_fields=["title", "updated_at"])


# What the bot says in a dialogue (prompts, one-line replies): not a message that greets,
# so it does not make the next script's greeting a repeat.
_DIALOGUE_KINDS = ("reply",)


async def greeting_due(customer_id: int, now: datetime, gap_hours: float) -> bool:
    """Whether a script to this owner starts a new exchange, so greets and introduces the
    sender (张先生您好！我是…的客服专员): nothing but dialogue prompts was said to them in
    the last ``gap_hours`` (``CAREBOT_EXCHANGE_GAP_HOURS``). Mid-exchange a person does not
    introduce themselves again (issue 18)."""
    since = now - timedelta(hours=gap_hours)
    said = await MessageLog.filter(
        customer_id=customer_id, direction=Direction.OUT, created_at__gte=since,
    ).exclude(kind__in=_DIALOGUE_KINDS).exists()
    return not said


async def log_message(
    *, direction: Direction, chat_id: int, text: str, now: datetime, kind: str = "text",
    customer_id: int | None = None, telegram_message_id: int | None = None,
) -> None:
    """Keep everything said to and by an owner (the seeds' call log)."""
    await MessageLog.create(
        direction=direction, chat_id=chat_id, text=text, kind=kind, created_at=now,
        customer_id=customer_id, telegram_message_id=telegram_message_id,
    )


async def find_customer(query: str) -> tuple[Customer | None, Vehicle | None]:
    """An owner by phone, plate or VIN, as staff type them (``/ticket <phone|plate|VIN>``)."""
    text = query.strip()
    compact = re.sub(r"[\s·.-]", "", text).upper()
    if len(compact) == 17 and compact.isalnum():
        vehicle = await Vehicle.get_or_none(vin=compact)
        if vehicle is not None:
            return await Customer.get(id=vehicle.customer_id), vehicle
    vehicle = await Vehicle.filter(plate__iexact=compact).order_by("-id").first()
    if vehicle is None and text:
        vehicle = await Vehicle.filter(plate__iexact=text).order_by("-id").first()
    if vehicle is not None:
        return await Customer.get(id=vehicle.customer_id), vehicle
    if re.fullmatch(r"\+?[\d\s()-]{6,20}", text):
        e164 = phone_to_e164(text)
        if e164:
            customer = await Customer.get_or_none(phone=e164)
            if customer is not None:
                return customer, None
    return None, None
