"""A local Telegram Bot API emulator: real HTTP for the bot, drivers for tests and the demo.

Point PTB at it with ``Application.builder().token(emu.token).base_url(f"{emu.api_url}/bot")``.
``emulator.py``'s docstring says which module holds what.
"""

from .driver import GroupDriver, UserDriver
from .emulator import TelegramEmulator
from .errors import ApiError
from .schema import load_schema
from .telegram_html import HtmlParseError, parse_html

__all__ = [
    "ApiError",
    "GroupDriver",
    "HtmlParseError",
    "TelegramEmulator",
    "UserDriver",
    "load_schema",
    "parse_html",
]
