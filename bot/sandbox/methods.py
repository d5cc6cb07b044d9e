"""The emulator's core Bot API methods: messages (send, edit, delete), button answers,
commands, chats, files and sendPhoto, and the posting rules every send method shares.

Media send methods and copyMessage are in ``media.py``, forum topics in ``topics.py``,
getUpdates and the webhook in ``updates.py``; all of them post through :meth:`CoreMethods.send`
so reachability, flood limits and reply keyboards hold the same for each.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .errors import ApiError, bad_request
from .media import KINDS, MAX_CAPTION_LENGTH
from .rules import (
    BLOCKABLE_METHODS,
    CHAT_ACTIONS,
    MAX_CALLBACK_ANSWER_LENGTH,
    MAX_TEXT_LENGTH,
    NOT_MODIFIED,
    check_markup,
    format_text,
)

if TYPE_CHECKING:
    from .emulator import TelegramEmulator
    from .state import Chat, StoredMessage

JSONDict = dict[str, Any]
Params = dict[str, Any]

_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")


class CoreMethods:
    """Messages, buttons, commands, chats and files; state stays in the emulator."""

    def __init__(self, emulator: TelegramEmulator) -> None:
        self.emu = emulator

    def methods(self) -> dict[str, Callable[[Params], Awaitable[Any]]]:
        """Bot API method name -> implementation, merged into the emulator's table."""
        return {
            "getMe": self.get_me,
            "sendMessage": self.send_message,
            "editMessageText": self.edit_message_text,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "deleteMessage": self.delete_message,
            "answerCallbackQuery": self.answer_callback_query,
            "setMyCommands": self.set_my_commands,
            "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands,
            "getChat": self.get_chat,
            "sendChatAction": self.send_chat_action,
            "sendPhoto": self.send_photo,
            "getFile": self.get_file,
            "close": self.true,
            "logOut": self.true,
        }

    # ----------------------------------------------------------------- posting

    def chat(self, params: Params, key: str = "chat_id") -> Chat:
        """The chat a request names by id or @username, as Telegram looks it up."""
        value = params.get(key)
        if value is None:
            raise bad_request(f"{key} is required")
        chat: Chat | None = None
        if isinstance(value, int):
            chat = self.emu.chats.get(value)
        elif isinstance(value, str) and value.startswith("@"):
            name = value[1:].lower()
            chat = next(
                (c for c in self.emu.chats.values() if (c.username or "").lower() == name), None
            )
        if chat is None:
            if value in self.emu.users:  # known (say, from a group) but never started the bot
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
            raise bad_request("chat not found")
        return chat

    def thread(self, chat: Chat, params: Params) -> int | None:
        """The live forum topic a request names (None outside forums)."""
        thread_id = params.get("message_thread_id")
        if thread_id is None or not chat.is_forum:
            return None
        if not isinstance(thread_id, int) or chat.live_topic(thread_id) is None:
            raise bad_request("message thread not found")
        return thread_id

    def check_reachable(self, chat: Chat, method: str) -> None:
        """403 for what a user who blocked the bot no longer receives."""
        if chat.blocked and method in BLOCKABLE_METHODS:
            raise ApiError(403, "Forbidden: bot was blocked by the user")

    def _reply_target(self, chat: Chat, params: Params) -> StoredMessage | None:
        reply = params.get("reply_parameters")
        if not isinstance(reply, dict) or reply.get("message_id") is None:
            return None
        target = chat.find(reply.get("message_id"))
        if target is None and not reply.get("allow_sending_without_reply"):
            raise bad_request("message to be replied not found")
        return target

    def send(self, method: str, chat: Chat, params: Params, content: JSONDict) -> JSONDict:
        """Shared tail of send methods: reachability, flood limits, store, reply keyboards."""
        thread_id = self.thread(chat, params)
        markup = check_markup(params.get("reply_markup"))
        target = self._reply_target(chat, params)
        if target is not None:
            content["reply_to_message"] = {
                k: v for k, v in target.message.items() if k != "reply_to_message"
            }
            if thread_id is None and chat.is_forum:
                thread_id = target.thread_id
        self.check_reachable(chat, method)
        self.emu.flood.check(chat)
        self.emu.flood.record(chat)
        if markup is not None:
            if "keyboard" in markup:
                chat.reply_keyboard = markup
            elif markup.get("remove_keyboard"):
                chat.reply_keyboard = None
            if "inline_keyboard" in markup:
                content["reply_markup"] = markup
        stored = self.emu.new_message(chat, self.emu.bot.to_dict(), True, thread_id, content)
        return stored.message

    def _own_message(self, params: Params) -> tuple[Chat, StoredMessage]:
        if params.get("inline_message_id") is not None:
            raise bad_request("inline messages are not emulated")
        chat = self.chat(params)
        if params.get("message_id") is None:
            raise bad_request("message_id is required")
        stored = chat.find(params.get("message_id"))
        if stored is None:
            raise bad_request("message to edit not found")
        if not stored.from_bot:
            raise bad_request("message can't be edited")
        return chat, stored

    def _edit(self, stored: StoredMessage, changes: JSONDict) -> JSONDict:
        message = stored.message
        if all(message.get(k) == v for k, v in changes.items()):
            raise bad_request(NOT_MODIFIED)
        for key, value in changes.items():
            if value is None:
                message.pop(key, None)
            else:
                message[key] = value
        message["edit_date"] = int(self.emu.wall_clock())
        self.emu.notify()
        return message

    # ----------------------------------------------------------------- methods

    async def true(self, _params: Params) -> bool:
        return True

    async def get_me(self, _params: Params) -> JSONDict:
        return {
            **self.emu.bot.to_dict(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def send_message(self, params: Params) -> JSONDict:
        chat = self.chat(params)
        text, entities = format_text(params, "text", "entities", MAX_TEXT_LENGTH, caption=False)
        content: JSONDict = {"text": text, "entities": entities or None}
        return self.send("sendMessage", chat, params, content)

    async def send_photo(self, params: Params) -> JSONDict:
        chat = self.chat(params)
        stored = self.emu.media.input_file(KINDS["photo"], params)
        caption, entities = format_text(
            params, "caption", "caption_entities", MAX_CAPTION_LENGTH, caption=True
        )
        content: JSONDict = {
            "photo": self.emu.photo_sizes(stored),
            "caption": caption or None,
            "caption_entities": entities or None,
        }
        return self.send("sendPhoto", chat, params, content)

    async def edit_message_text(self, params: Params) -> JSONDict:
        _chat, stored = self._own_message(params)
        if "text" not in stored.message:
            raise bad_request("there is no text in the message to edit")
        text, entities = format_text(params, "text", "entities", MAX_TEXT_LENGTH, caption=False)
        markup = check_markup(params.get("reply_markup"), inline_only=True)
        # Like Telegram, an edit without reply_markup removes the inline keyboard.
        return self._edit(
            stored, {"text": text, "entities": entities or None, "reply_markup": markup}
        )

    async def edit_message_reply_markup(self, params: Params) -> JSONDict:
        _chat, stored = self._own_message(params)
        markup = check_markup(params.get("reply_markup"), inline_only=True)
        return self._edit(stored, {"reply_markup": markup})

    async def delete_message(self, params: Params) -> bool:
        chat = self.chat(params)
        stored = chat.find(params.get("message_id"))
        if stored is None:
            raise bad_request("message to delete not found")
        stored.deleted = True
        self.emu.notify()
        return True

    async def answer_callback_query(self, params: Params) -> bool:
        query = self.emu.callbacks.get(str(params.get("callback_query_id")))
        if query is None or query.answered:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        text = params.get("text")
        if isinstance(text, str) and len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise bad_request("MESSAGE_TOO_LONG")
        query.answered = True
        query.text = text
        query.show_alert = bool(params.get("show_alert"))
        query.url = params.get("url")
        self.emu.notify()
        return True

    @staticmethod
    def _commands_key(params: Params) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    async def set_my_commands(self, params: Params) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            if not isinstance(command, dict) or not _COMMAND_RE.fullmatch(
                str(command.get("command", ""))
            ):
                raise bad_request("BOT_COMMAND_INVALID")
            description = command.get("description")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.emu.commands[self._commands_key(params)] = commands
        return True

    async def get_my_commands(self, params: Params) -> list[JSONDict]:
        return self.emu.commands.get(self._commands_key(params), [])

    async def delete_my_commands(self, params: Params) -> bool:
        self.emu.commands.pop(self._commands_key(params), None)
        return True

    async def get_chat(self, params: Params) -> JSONDict:
        chat = self.chat(params)
        return {
            **chat.to_dict(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    async def send_chat_action(self, params: Params) -> bool:
        chat = self.chat(params)
        action = params.get("action")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self.thread(chat, params)
        self.check_reachable(chat, "sendChatAction")
        chat.chat_actions.append(str(action))
        return True

    async def get_file(self, params: Params) -> JSONDict:
        stored = self.emu.files.get(str(params.get("file_id")))
        if stored is None:
            raise bad_request("invalid file_id")
        return stored.to_dict()
