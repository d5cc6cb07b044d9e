"""Owner side of marketing: campaign buttons, one-tap Unsubscribe, 退订/TD/STOP, /subscribe.

Thin: each handler calls bot.campaigns.promotions or bot.consent and answers with a label.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from apscheduler.schedulers.base import BaseScheduler
from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, filters

from bot import consent, locks, owners
from bot.campaigns import content, policy, promotions
from bot.delivery import notices
from bot.delivery.dispatcher import Composer, Outgoing, dealer_context
from bot.handlers import buttons
from bot.handlers.owner import lang_of, log_in, say
from bot.keyboards import keyboard
from bot.services import Services, services_of
from db.models import Campaign, CampaignStatus, Customer, Staff, Touchpoint, Vehicle

log = logging.getLogger(__name__)

TEXT_ROUTE_PRIORITY = 5
STOP_WORDS = frozenset({"退订", "td", "stop", "unsubscribe", "取消订阅"})
_PRESS = re.compile(r"^mk:(\d{1,9}):([ibu])$")
_QUESTION = re.compile(r"^mk:c:([yn])$")


def is_stop_word(text: str) -> bool:
    """退订 / TD / STOP (any case, surrounding spaces and punctuation ignored)."""
    return text.strip().strip("。.!！ ").casefold() in STOP_WORDS


def make_composer(services: Services) -> Composer:
    async def composer(tp: Touchpoint, customer: Customer, vehicle: Vehicle | None) -> Outgoing:
        campaign = await Campaign.get(id=int(tp.payload["campaign_id"]))
        return content.compose_campaign(
            campaign, customer, vehicle or await content.latest_vehicle(customer.id),
            services.scripts, services.settings, touchpoint_id=tp.id)

    return composer


def unsubscribe_wording(svc: Services, lang: str) -> str:
    """What the owner was shown when withdrawing: the footer of every campaign message."""
    return svc.scripts.render("campaign_footer", lang, dealer=dealer_context(svc.settings))


async def _unsubscribe(update: Update, svc: Services, customer: Customer, *, source: str,
                       campaign_id: int | None) -> None:
    now = svc.clock.now()
    await consent.withdraw(customer, now=now, source=source, campaign_id=campaign_id,
                           wording=unsubscribe_wording(svc, customer.language))
    await say(update, svc, svc.scripts.label(
        "campaign_unsubscribed", customer.language, name=customer.name,
        dealer=svc.settings.dealer_name, phone=svc.settings.dealer_phone), customer=customer)


async def tell_advisor(svc: Services, customer: Customer, key: str, text: str) -> bool:
    """The owner's advisor in their own chat if they have one on Telegram, else the staff
    chat, as a notice owed (``key``: its cause, told once); False when nobody could be told
    now (it is tried again)."""
    targets: list[int] = []
    if customer.advisor:
        staff = await Staff.filter(name=customer.advisor, active=True,
                                   telegram_id__isnull=False).first()
        if staff is not None and staff.telegram_id is not None:
            targets.append(staff.telegram_id)
    if svc.settings.staff_chat_id is not None:
        targets.append(svc.settings.staff_chat_id)
    return await notices.tell(svc, key, targets, text)


async def button_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """mk:<id>:i (interested), mk:<id>:b (book), mk:<id>:u (unsubscribe), mk:c:y/n."""
    svc = services_of(context)
    query = update.callback_query
    assert query is not None and query.data is not None
    customer = await owners.customer_for_user(query.from_user.id)
    if customer is None:
        await buttons.answer(svc, query, svc.scripts.label("not_linked", lang_of(update, None)))
        return
    await log_in(update, svc, customer, "button", query.data)
    lang = customer.language
    now = svc.clock.now()
    question = _QUESTION.match(query.data)
    if question:
        await buttons.answer(svc, query)
        await buttons.edit_markup(svc, query)  # answered: the question's buttons go
        await _consent_answer(update, svc, customer, question.group(1) == "y", now)
        return
    press = _PRESS.match(query.data)
    campaign = await Campaign.get_or_none(id=int(press.group(1))) if press else None
    if press is None or campaign is None:
        await buttons.answer(svc, query, svc.scripts.label("campaign_ended", lang))
        return
    button = policy.CODE_BUTTONS[press.group(2)]
    if button == "unsubscribe":
        await buttons.answer(svc, query)
        await promotions.record_press(campaign.id, customer.id, button, now)
        await buttons.edit_markup(svc, query)  # unsubscribed: the offer's buttons go
        await _unsubscribe(update, svc, customer, source="bot:unsubscribe",
                           campaign_id=campaign.id)
        return
    first = await promotions.record_press(campaign.id, customer.id, button, now)
    if not first:
        await buttons.answer(svc, query, svc.scripts.label("campaign_already_pressed", lang))
        return
    await buttons.answer(svc, query)
    await buttons.edit_markup(svc, query, buttons.without(query, query.data))  # said once
    phone = svc.settings.dealer_phone
    await say(update, svc, svc.scripts.label(f"campaign_thanks_{button}", lang,
                                             name=customer.name, phone=phone), customer=customer)
    # Booking (issue 3's bot.bookings) is offered from service reminders; from a campaign the
    # advisor agrees the time with the owner, so staff are told either way.
    await tell_advisor(svc, customer, f"campaign:{campaign.id}:{customer.id}:{button}",
                       svc.scripts.label(f"campaign_staff_{button}", "zh_CN",
                                         campaign=campaign.name, name=customer.name,
                                         phone=customer.phone,
                                         advisor=customer.advisor or "-"))


def consent_wording(svc: Services, customer: Customer) -> str:
    return svc.scripts.label("campaign_consent_question", customer.language, name=customer.name,
                             dealer=svc.settings.dealer_name,
                             cap=svc.settings.marketing_weekly_cap)


async def subscribe_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/subscribe: the consent question, with its exact wording kept when answered."""
    svc = services_of(context)
    user = update.effective_user
    assert user is not None
    customer = await owners.customer_for_user(user.id)
    await log_in(update, svc, customer, "command", "/subscribe")
    if customer is None:
        await say(update, svc, svc.scripts.label("not_linked", lang_of(update, None)),
                  customer=None)
        return
    lang = customer.language
    choice = keyboard([[(svc.scripts.label("campaign_consent_yes", lang), "mk:c:y"),
                        (svc.scripts.label("campaign_consent_no", lang), "mk:c:n")]])
    await say(update, svc, consent_wording(svc, customer), customer=customer, markup=choice)


async def _consent_answer(update: Update, svc: Services, customer: Customer, yes: bool,
                          now: datetime) -> None:
    wording = consent_wording(svc, customer)
    if yes:
        await consent.grant(customer, now=now, source="bot:question", wording=wording)
        text = svc.scripts.label("campaign_consent_given", customer.language)
        if customer.followups_refused:
            # Consent to offers only: "stop every follow-up" stays until the owner asks the
            # dealership to lift it (docs/campaigns.md), and the owner is told so plainly.
            text = svc.scripts.label("campaign_consent_given_followups_stopped",
                                     customer.language, phone=svc.settings.dealer_phone)
    else:
        if customer.marketing_consent:
            await consent.withdraw(customer, now=now, source="bot:question", wording=wording)
        text = svc.scripts.label("campaign_consent_declined", customer.language)
    await say(update, svc, text, customer=customer)


async def stop_word_route(update: Update, context: ContextTypes.DEFAULT_TYPE,
                          customer: Customer | None) -> bool:
    """退订 / TD / STOP withdraw marketing consent at once (service messages continue)."""
    msg = update.effective_message
    if customer is None or msg is None or not msg.text or not is_stop_word(msg.text):
        return False
    await _unsubscribe(update, services_of(context), customer, source="bot:text",
                       campaign_id=None)
    return True


def register(application: Application, services: Services) -> None:  # type: ignore[type-arg]
    services.dispatcher.composers[policy.KIND] = make_composer(services)
    cap = services.settings.marketing_weekly_cap

    async def cap_rule(now: datetime) -> int:
        return await promotions.skip_capped(now, cap)

    services.dispatcher.skip_rules.append(cap_rule)
    services.dispatcher.skip_rules.append(promotions.stop_cancelled_and_paused)
    application.add_handler(CallbackQueryHandler(button_pressed, pattern=r"^mk:"))
    application.add_handler(
        CommandHandler("subscribe", subscribe_command, filters=filters.ChatType.PRIVATE))
    services.add_text_route(TEXT_ROUTE_PRIORITY, stop_word_route)


async def resume_interrupted_launches(*, now: datetime,
                                      rules: policy.CampaignRules) -> list[int]:
    """Launch again every campaign left "sending" but never marked launched: the process
    launching it died mid-way (SIGKILL, power), leaving some of its rows written. Only the
    holder of the ``campaigns`` lock launches, so while this tick holds it nobody else is
    writing them; the touchpoint key (owner, kind, occasion) keeps every owner once."""
    resumed: list[int] = []
    for campaign in await Campaign.filter(status=CampaignStatus.SENDING,
                                          launched_at__isnull=True).order_by("id"):
        log.warning("campaign %s: its launch was interrupted; launching it again",
                    campaign.id)
        try:
            await promotions.launch(campaign, now=now, rules=rules)
        except Exception:  # one broken campaign must not stop the others
            log.exception("campaign %s: the resumed launch failed; the next tick retries",
                          campaign.id)
            continue
        resumed.append(campaign.id)
    return resumed


async def campaign_tick(services: Services) -> None:
    """Finish interrupted launches, launch campaigns whose send time came, mark finished
    ones done. One instance at a time (the ``campaigns`` advisory lock); others skip."""
    async with locks.locks_of(services).singleton(locks.CAMPAIGNS) as mine:
        if not mine:
            return
        now = services.clock.now()
        rules = services.rules.campaigns
        try:
            await resume_interrupted_launches(now=now, rules=rules)
            await promotions.launch_due(now=now, rules=rules)
            await promotions.finish_done(now=now)
        except Exception:  # a failed tick must not kill the scheduler
            log.exception("campaign tick failed; the next tick retries")


def schedule(scheduler: BaseScheduler, services: Services) -> None:
    scheduler.add_job(campaign_tick, "interval", args=[services],
                      seconds=services.settings.campaign_tick_seconds, id="campaigns",
                      max_instances=1, coalesce=True)
