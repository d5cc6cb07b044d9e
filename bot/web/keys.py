"""The aiohttp application's shared keys: set once by ``bot.web.server.make_web_app`` (the
wiring), read by every route module, so none of them imports the wiring."""

from __future__ import annotations

from aiohttp import web
from telegram.ext import Application

from bot.inbox import Inbox
from bot.services import Services

SERVICES = web.AppKey("services", Services)
PTB = web.AppKey("ptb", Application)
INBOX = web.AppKey("inbox", Inbox)
WEBHOOK_PATH = web.AppKey("webhook_path", str)  # the route Telegram posts updates to
