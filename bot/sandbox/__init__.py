"""A local Telegram Bot API emulator: real HTTP for the bot, drivers for tests and the demo.

Point PTB at it with ``Application.builder().token(emu.token).base_url(f"{emu.api_url}/bot")``.
"""

from .driver import GroupDriver, UserDriver
from .emulator import ApiError, HtmlParseError, TelegramEmulator, parse_html
from .schema import load_schema

__all__ = [
    "ApiError",
    "GroupDriver",
    "HtmlParseError",
    "TelegramEmulator",
    "UserDriver",
    "load_schema",
    "parse_html",
]
