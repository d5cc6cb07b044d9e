"""Owner-facing handlers: linking (/start token or shared contact), help, opt-out, language.

Thin by design: each turns an update into a call of a domain function in ``bot.owners`` and
answers with a label from the scripts.
"""

from __future__ import annotations

import logging

from telegram import (
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import owners
from bot.handlers import buttons
from bot.keyboards import keyboard
from bot.owners import LinkOutcome
from bot.salutation import TITLES, UNKNOWN, address
from bot.services import Services, services_of
from bot.texts import normalize_language
from bot.tickets import contact_button
from db.models import Customer, Direction

log = logging.getLogger(__name__)

AWAITING_CONTACT = "awaiting_contact"
#: what an owner may write (and staff in a topic): text and every kind of media but contacts
MESSAGES = (filters.TEXT | filters.PHOTO | filters.VOICE | filters.AUDIO | filters.VIDEO
            | filters.VIDEO_NOTE | filters.Document.ALL | filters.Sticker.ALL | filters.LOCATION)
MEDIA = ("photo", "voice", "audio", "video", "video_note", "document", "sticker", "location")


def kind_of(msg: Message) -> str:
    """"text", or the kind of media the message carries (the message log's kind)."""
    return next((name for name in MEDIA if getattr(msg, name, None)), "text")


def lang_of(update: Update, customer: Customer | None) -> str:
    if customer is not None:
        return customer.language
    user = update.effective_user
    return normalize_language(user.language_code if user else None)


async def say(update: Update, svc: Services, text: str, *, customer: Customer | None,
               markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None
               = None) -> None:
    """Answer in the chat (plain text: labels may carry names) and keep it in the log (what
    could not be sent is not: the sender recorded it)."""
    chat = update.effective_chat
    assert chat is not None
    sent = await svc.sender.text(chat.id, text, reply_markup=markup)
    if sent is None:
        return
    await owners.log_message(
        direction=Direction.OUT, chat_id=chat.id, text=text, now=svc.clock.now(), kind="reply",
        customer_id=customer.id if customer else None, telegram_message_id=sent.message_id,
    )


async def log_in(update: Update, svc: Services, customer: Customer | None, kind: str,
                  text: str) -> None:
    msg = update.effective_message
    chat = update.effective_chat
    assert chat is not None
    await owners.log_message(
        direction=Direction.IN, chat_id=chat.id, text=text, now=svc.clock.now(), kind=kind,
        customer_id=customer.id if customer else None,
        telegram_message_id=msg.message_id if msg else None,
    )


def _contact_keyboard(svc: Services, lang: str) -> ReplyKeyboardMarkup:
    button = KeyboardButton(svc.scripts.label("share_contact_button", lang), request_contact=True)
    return ReplyKeyboardMarkup([[button]], resize_keyboard=True, one_time_keyboard=True)


async def _after_link(update: Update, svc: Services, customer: Customer) -> None:
    text = svc.scripts.label("welcome_linked", customer.language, name=customer.name,
                             dealer=svc.settings.dealer_name)
    await say(update, svc, text, customer=customer, markup=ReplyKeyboardRemove())
    # Whatever was owed while they were not linked goes out now, if still valid.
    await svc.dispatcher.dispatch_due(customer_id=customer.id)


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start [token]: link by deep link, or ask for the phone number."""
    svc = services_of(context)
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    now = svc.clock.now()
    existing = await owners.customer_for_user(user.id)
    msg = update.effective_message
    await log_in(update, svc, existing, "command", msg.text if msg and msg.text else "/start")
    if context.args:
        result = await owners.link_by_token(context.args[0], user_id=user.id, chat_id=chat.id,
                                            now=now)
        if result.outcome is LinkOutcome.LINKED and result.customer is not None:
            await _after_link(update, svc, result.customer)
            return
        if existing is not None:
            # Already linked: an old link (the token turns over when used, so also this very
            # /start handled a second time after a crash) changes nothing.
            text = svc.scripts.label("welcome_back", existing.language, name=existing.name)
            await say(update, svc, text, customer=existing)
            return
        lang = lang_of(update, existing)
        await owners.set_conversation(user.id, AWAITING_CONTACT)
        await say(update, svc, svc.scripts.label("token_invalid", lang), customer=existing,
                   markup=_contact_keyboard(svc, lang))
        return
    if existing is not None:
        text = svc.scripts.label("welcome_back", existing.language, name=existing.name)
        await say(update, svc, text, customer=existing)
        return
    lang = lang_of(update, None)
    await owners.set_conversation(user.id, AWAITING_CONTACT)
    await say(update, svc, svc.scripts.label("ask_contact", lang, dealer=svc.settings.dealer_name),
               customer=None, markup=_contact_keyboard(svc, lang))


async def contact_shared(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A shared contact links the owner, but only if it is their own."""
    svc = services_of(context)
    msg, user, chat = update.effective_message, update.effective_user, update.effective_chat
    assert msg is not None and msg.contact is not None and user is not None and chat is not None
    existing = await owners.customer_for_user(user.id)
    await log_in(update, svc, existing, "contact", msg.contact.phone_number)
    result = await owners.link_by_contact(
        msg.contact.phone_number, contact_user_id=msg.contact.user_id, sender_id=user.id,
        chat_id=chat.id, now=svc.clock.now(),
    )
    lang = lang_of(update, existing)
    if result.outcome is LinkOutcome.LINKED and result.customer is not None:
        await _after_link(update, svc, result.customer)
    elif result.outcome is LinkOutcome.NOT_OWN_CONTACT:
        await say(update, svc, svc.scripts.label("contact_not_own", lang), customer=existing,
                   markup=_contact_keyboard(svc, lang))
    else:
        await say(update, svc, svc.scripts.label("contact_unknown", lang,
                                                  phone=svc.settings.dealer_phone),
                   customer=existing, markup=ReplyKeyboardRemove())


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services_of(context)
    user = update.effective_user
    assert user is not None
    customer = await owners.customer_for_user(user.id)
    await log_in(update, svc, customer, "command", "/help")
    lang = lang_of(update, customer)
    label, data = contact_button(lang, svc.scripts)  # complaints (bot.tickets)
    await say(update, svc, svc.scripts.label("help", lang, phone=svc.settings.dealer_phone),
              customer=customer,
              markup=keyboard([[(label, data)]]))


async def stop_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/stop asks first: marketing only, or every follow-up too."""
    svc = services_of(context)
    user = update.effective_user
    assert user is not None
    customer = await owners.customer_for_user(user.id)
    await log_in(update, svc, customer, "command", "/stop")
    lang = lang_of(update, customer)
    if customer is None:
        await say(update, svc, svc.scripts.label("not_linked", lang), customer=None)
        return
    choice = keyboard([[(svc.scripts.label("stop_marketing_button", lang), "stop:marketing")],
                       [(svc.scripts.label("stop_all_button", lang), "stop:all")],
                       [(svc.scripts.label("cancel_button", lang), "stop:cancel")]])
    await say(update, svc, svc.scripts.label("stop_ask", lang), customer=customer,
               markup=choice)


async def stop_chosen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services_of(context)
    query = update.callback_query
    assert query is not None and query.data is not None
    customer = await owners.customer_for_user(query.from_user.id)
    choice = query.data.partition(":")[2]
    await buttons.answer(svc, query)
    if customer is None:
        await buttons.edit_text(svc, query, svc.scripts.label("not_linked", lang_of(update, None)))
        return
    await log_in(update, svc, customer, "button", query.data)
    lang = customer.language
    now = svc.clock.now()
    if choice == "marketing":
        await owners.stop_marketing(customer, now=now, source="bot:/stop")
        text = svc.scripts.label("stop_marketing_done", lang, phone=svc.settings.dealer_phone)
    elif choice == "all":
        await owners.stop_followups(customer, now=now, source="bot:/stop")
        text = svc.scripts.label("stop_all_done", lang, phone=svc.settings.dealer_phone)
    else:
        text = svc.scripts.label("stop_cancelled", lang)
    await buttons.edit_text(svc, query, text)


async def language_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services_of(context)
    user = update.effective_user
    assert user is not None
    customer = await owners.customer_for_user(user.id)
    await log_in(update, svc, customer, "command", "/language")
    if customer is None:
        await say(update, svc, svc.scripts.label("not_linked", lang_of(update, None)),
                   customer=None)
        return
    choice = keyboard([[("中文", "lang:zh_CN"), ("English", "lang:en")]])
    await say(update, svc, svc.scripts.label("language_ask", customer.language),
               customer=customer, markup=choice)


async def language_chosen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services_of(context)
    query = update.callback_query
    assert query is not None and query.data is not None
    await buttons.answer(svc, query)
    customer = await owners.customer_for_user(query.from_user.id)
    if customer is None:
        return
    language = normalize_language(query.data.partition(":")[2])
    await owners.set_language(customer, language)
    await buttons.edit_text(svc, query, svc.scripts.label("language_set", language))


async def title_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/title: the owner says how scripts address them (张先生, 张女士 or the name only)."""
    svc = services_of(context)
    user = update.effective_user
    assert user is not None
    customer = await owners.customer_for_user(user.id)
    await log_in(update, svc, customer, "command", "/title")
    if customer is None:
        await say(update, svc, svc.scripts.label("not_linked", lang_of(update, None)),
                   customer=None)
        return
    lang = customer.language
    choice = keyboard([[(address(customer.name, title, lang), f"title:{title}")
                        for title in TITLES],
                       [(svc.scripts.label("title_name_only", lang, name=customer.name),
                         "title:none")]])
    await say(update, svc, svc.scripts.label("title_ask", lang), customer=customer,
               markup=choice)


async def title_chosen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services_of(context)
    query = update.callback_query
    assert query is not None and query.data is not None
    await buttons.answer(svc, query)
    customer = await owners.customer_for_user(query.from_user.id)
    if customer is None:
        return
    said = query.data.partition(":")[2]
    title = said if said in TITLES else UNKNOWN
    await owners.set_title(customer, title)
    await buttons.edit_text(svc, query, svc.scripts.label(
        "title_set", customer.language, address=address(customer.name, title,
                                                        customer.language)))


async def text_received(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Anything else the owner writes is kept; unlinked users are asked to link first."""
    svc = services_of(context)
    msg, user = update.effective_message, update.effective_user
    assert msg is not None and user is not None
    customer = await owners.customer_for_user(user.id)
    sticker = msg.sticker.emoji if msg.sticker is not None else None
    await log_in(update, svc, customer, kind_of(msg), msg.text or msg.caption or sticker or "")
    for _, route in svc.text_routes:
        if await route(update, context, customer):
            return
    lang = lang_of(update, customer)
    if customer is None:
        await say(update, svc, svc.scripts.label("not_linked", lang), customer=None,
                   markup=_contact_keyboard(svc, lang))
        return
    await say(update, svc, svc.scripts.label("received", lang), customer=customer)


async def membership_changed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The owner blocked or unblocked the bot: mark them (un)reachable at once."""
    svc = services_of(context)
    change = update.my_chat_member
    if change is None or change.chat.type != "private":
        return
    blocked = change.new_chat_member.status in ("kicked", "left")
    if await owners.mark_reachable(change.from_user.id, blocked=blocked, now=svc.clock.now()):
        log.info("owner %s %s the bot", change.from_user.id,
                 "blocked" if blocked else "unblocked")


def register(application: Application, services: Services) -> None:  # type: ignore[type-arg]
    private = filters.ChatType.PRIVATE
    # first of all, in a group of its own: a button whose step is over is answered and goes
    # no further (any other press goes on to its handler)
    application.add_handler(CallbackQueryHandler(buttons.stale_guard), group=buttons.GUARD_GROUP)
    application.add_handler(CommandHandler("start", start, filters=private))
    application.add_handler(CommandHandler("help", help_command, filters=private))
    application.add_handler(CommandHandler("stop", stop_command, filters=private))
    application.add_handler(CommandHandler("language", language_command, filters=private))
    application.add_handler(CommandHandler("title", title_command, filters=private))
    application.add_handler(MessageHandler(private & filters.CONTACT, contact_shared))
    application.add_handler(
        ChatMemberHandler(membership_changed, ChatMemberHandler.MY_CHAT_MEMBER)
    )
    application.add_handler(CallbackQueryHandler(stop_chosen, pattern=r"^stop:"))
    application.add_handler(CallbackQueryHandler(language_chosen, pattern=r"^lang:"))
    application.add_handler(CallbackQueryHandler(title_chosen, pattern=r"^title:"))
    application.add_handler(MessageHandler(private & MESSAGES & ~filters.COMMAND, text_received))
