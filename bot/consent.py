"""Marketing consent: every grant and withdrawal is kept with its time, source and wording.

The owner's current state lives on :class:`Customer` (``marketing_consent`` and friends, what
the dispatcher and audiences read); :class:`ConsentRecord` rows are the history a regulator
asks for ("when did this owner agree, how, and to what wording?"). Rows are only added.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from tortoise.expressions import Subquery
from tortoise.functions import Max
from tortoise.transactions import in_transaction

from db.models import ConsentRecord, Customer

log = logging.getLogger(__name__)

# What an import's consent column means; anything else is a row warning, consent unchanged.
YES_WORDS = frozenset({"yes", "y", "true", "1", "是", "同意", "有"})
NO_WORDS = frozenset({"no", "n", "false", "0", "否", "不同意", "无"})
IMPORT_WORDING = "import: the dealership's file says the owner consented to marketing"


def parse_consent(value: object) -> bool | None:
    """yes/no/是/否/1/0 -> True/False; blank -> None; anything else raises ValueError."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().casefold()
    if not text:
        return None
    if text in YES_WORDS:
        return True
    if text in NO_WORDS:
        return False
    raise ValueError(f"{value!r}: write yes/no, 是/否 or 1/0; marketing consent is left as it was")


async def record(customer: Customer, *, granted: bool, now: datetime, source: str,
                 wording: str, campaign_id: int | None = None) -> bool:
    """Set the owner's consent and keep the record; False (and no record) when unchanged."""
    changed = customer.marketing_consent != granted
    async with in_transaction():
        customer.marketing_consent = granted
        customer.marketing_consent_at = now
        customer.marketing_consent_source = source[:50]
        await customer.save(update_fields=["marketing_consent", "marketing_consent_at",
                                           "marketing_consent_source", "updated_at"])
        if changed or not await ConsentRecord.filter(customer_id=customer.id).exists():
            await ConsentRecord.create(customer_id=customer.id, granted=granted,
                                       source=source[:50], wording=wording,
                                       campaign_id=campaign_id, created_at=now)
    if changed:
        log.info("owner %s %s marketing consent (%s)", customer.id,
                 "gave" if granted else "withdrew", source)
    return changed


async def withdraw(customer: Customer, *, now: datetime, source: str, wording: str,
                   campaign_id: int | None = None) -> bool:
    """Marketing stops at once; service messages go on. True when it was given before."""
    return await record(customer, granted=False, now=now, source=source, wording=wording,
                        campaign_id=campaign_id)


async def grant(customer: Customer, *, now: datetime, source: str, wording: str) -> bool:
    return await record(customer, granted=True, now=now, source=source, wording=wording)


async def apply_import(consents: Mapping[str, bool], *, now: datetime,
                       wording: str = IMPORT_WORDING) -> int:
    """An import's consent column, by phone: owners whose consent changes get it set and a
    record with source "import". Set-based; returns how many changed. A "yes" never
    re-subscribes an owner whose latest record is a withdrawal from outside an import (the
    bot, /stop, Unsubscribe, 退订): nothing is recorded for them, only a warning logged."""
    changed = 0
    for granted in (True, False):
        phones = [p for p, v in consents.items() if v is granted]
        for start in range(0, len(phones), 1000):
            chunk = phones[start:start + 1000]
            query = Customer.filter(phone__in=chunk).exclude(marketing_consent=granted)
            if granted:
                # The owner's own withdrawal (bot, /stop, Unsubscribe, 退订) outranks the file.
                withdrawn = Subquery(ConsentRecord.filter(
                    id__in=Subquery(ConsentRecord.annotate(m=Max("id")).group_by(
                        "customer_id").values("m")),
                    granted=False,
                ).exclude(source="import").values("customer_id"))
                kept = await query.filter(id__in=withdrawn).count()
                if kept:
                    log.warning("import: %d owner(s) marked as consenting withdrew it "
                                "themselves; their withdrawal is kept", kept)
                query = query.exclude(id__in=withdrawn)
            ids = await query.values_list("id", flat=True)
            if not ids:
                continue
            async with in_transaction():
                await Customer.filter(id__in=ids).update(
                    marketing_consent=granted, marketing_consent_at=now,
                    marketing_consent_source="import")
                await ConsentRecord.bulk_create([
                    ConsentRecord(customer_id=cid, granted=granted, source="import",
                                  wording=wording, created_at=now) for cid in ids
                ])
            changed += len(ids)
    return changed


async def history(customer_id: int) -> list[ConsentRecord]:
    return await ConsentRecord.filter(customer_id=customer_id).order_by("created_at", "id")
