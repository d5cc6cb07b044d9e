"""The one inline-keyboard builder.

A keyboard is rows of ``(label, data)``: data starting with ``url:`` makes a link button
(``url:https://example.com``), anything else a callback button. Composers, handlers and the
console describe keyboards this way (plain values, testable without Telegram) and this turns
them into Telegram's markup.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

Rows = list[list[tuple[str, str]]]
URL = "url:"


def button(label: str, data: str) -> InlineKeyboardButton:
    if data.startswith(URL):
        return InlineKeyboardButton(label, url=data[len(URL):])
    return InlineKeyboardButton(label, callback_data=data)


def keyboard(rows: Rows) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[button(label, data) for label, data in row] for row in rows])


def keyboard_or_none(rows: Rows | None) -> InlineKeyboardMarkup | None:
    """No rows, no keyboard (Telegram's "remove it" on an edit)."""
    return keyboard(rows) if rows else None
