"""Telegram's content rules the emulator enforces: text and caption limits, parse modes,
reply markup (above all callback_data's 64 bytes), and which methods post a message.

Pure functions of a request's parameters; the emulator's state is not needed to judge them.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from .errors import bad_request
from .telegram_html import HtmlParseError, parse_html, strip_text

JSONDict = dict[str, Any]
Params = dict[str, Any]

MAX_TEXT_LENGTH = 4096
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_LENGTH = 200
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_MEDIA_METHODS = frozenset(
    {"sendPhoto", "sendVoice", "sendDocument", "sendSticker", "sendVideo", "sendAudio",
     "sendVideoNote", "sendLocation", "copyMessage"}
)
#: Methods that post a message and so count against Telegram's flood limits.
SENDING_METHODS = frozenset({"sendMessage"}) | _MEDIA_METHODS
#: Methods refused with 403 when the private chat's user blocked the bot.
BLOCKABLE_METHODS = frozenset({"sendMessage", "sendChatAction"}) | _MEDIA_METHODS
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


def format_text(
    params: Params, text_key: str, entities_key: str, limit: int, *, caption: bool
) -> tuple[str, list[JSONDict]]:
    """Apply parse_mode and Telegram's length rules; return (plain text, entities)."""
    text = params.get(text_key)
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise bad_request(f'field "{text_key}" must be of type String')
    parse_mode = params.get("parse_mode")
    entities: list[JSONDict] = []
    if parse_mode in (None, ""):
        given = params.get(entities_key)
        if isinstance(given, list):
            entities = [e for e in given if isinstance(e, dict)]
    elif not isinstance(parse_mode, str):
        raise bad_request("unsupported parse_mode")
    elif parse_mode.lower() == "html":
        try:
            text, entities = parse_html(text)
        except HtmlParseError as exc:
            raise bad_request(f"can't parse entities: {exc}") from exc
    elif parse_mode.lower() not in ("markdown", "markdownv2"):
        raise bad_request(f"unsupported parse_mode {parse_mode!r}")
    text, entities = strip_text(text, entities)
    if caption:
        if len(text) > limit:
            raise bad_request("message caption is too long")
    else:
        if not text:
            raise bad_request("message text is empty")
        if len(text) > limit:
            raise bad_request("message is too long")
    return text, entities


def check_markup(markup: object, *, inline_only: bool = False) -> JSONDict | None:
    """Check reply_markup as Telegram does, above all callback_data's 64-byte limit."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad_request(
                'field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of '
                "Arrays"
            )
        if sum(len(r) for r in rows) > 100:
            raise bad_request("BUTTONS_TOO_MUCH")
        for button in itertools.chain.from_iterable(rows):
            check_inline_button(button)
        return markup
    if inline_only:
        raise bad_request("object expected as reply markup")
    if "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad_request(
                'field "keyboard" of the ReplyKeyboardMarkup should be an Array of Arrays'
            )
        for button in itertools.chain.from_iterable(rows):
            text = button if isinstance(button, str) else (button or {}).get("text")
            if not isinstance(text, str) or not text:
                raise bad_request("can't parse keyboard button: text must be non-empty")
        return markup
    if markup.get("remove_keyboard") is True or markup.get("force_reply") is True:
        return markup
    raise bad_request("can't parse reply keyboard markup JSON object")


def check_inline_button(button: object) -> None:
    """One inline button as Telegram checks it: text, and one action that it accepts."""
    if not isinstance(button, dict):
        raise bad_request("can't parse inline keyboard button: object expected")
    if not isinstance(button.get("text"), str) or not button["text"]:
        raise bad_request("can't parse inline keyboard button: text must be non-empty")
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str):
            raise bad_request(
                "can't parse inline keyboard button: callback_data must be String"
            )
        if not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")
    elif "url" in button:
        url = button["url"]
        if not isinstance(url, str) or not re.match(r"(https?|tg)://\S+$", url):
            raise bad_request("BUTTON_URL_INVALID")
    elif not any(
        key in button
        for key in (
            "web_app",
            "login_url",
            "switch_inline_query",
            "switch_inline_query_current_chat",
            "switch_inline_query_chosen_chat",
            "copy_text",
            "callback_game",
            "pay",
        )
    ):
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline "
            "keyboard"
        )
