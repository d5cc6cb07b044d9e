"""The emulated Telegram's state: users, chats and their messages, topics, button presses,
files and the webhook, as plain dataclasses that drivers and tests read directly.

Each has ``to_dict()`` giving the Bot API object when Telegram shows it to the bot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSONDict = dict[str, Any]


@dataclass
class User:
    """A Telegram user (an owner or a staff member)."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False

    def to_dict(self) -> JSONDict:
        """The Bot API User object."""
        data: JSONDict = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


@dataclass
class Topic:
    """A forum topic of a supergroup; its id is the id of the service message creating it."""

    thread_id: int
    name: str
    icon_color: int
    icon_custom_emoji_id: str | None = None
    closed: bool = False
    deleted: bool = False

    def to_dict(self) -> JSONDict:
        """The Bot API ForumTopic object."""
        data: JSONDict = {
            "message_thread_id": self.thread_id,
            "name": self.name,
            "icon_color": self.icon_color,
        }
        if self.icon_custom_emoji_id:
            data["icon_custom_emoji_id"] = self.icon_custom_emoji_id
        return data


@dataclass
class StoredMessage:
    """One message in a chat, in either direction; ``message`` is the Bot API object."""

    message: JSONDict
    from_bot: bool
    deleted: bool = False

    @property
    def message_id(self) -> int:
        """Telegram's id of the message, unique within its chat."""
        return int(self.message["message_id"])

    @property
    def thread_id(self) -> int | None:
        """The forum topic the message belongs to, if any."""
        value = self.message.get("message_thread_id")
        return int(value) if value is not None else None


@dataclass
class Chat:
    """A private chat (id == the user's id), a group or a supergroup (maybe a forum)."""

    id: int
    type: str
    title: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    is_forum: bool = False
    blocked: bool = False
    messages: list[StoredMessage] = field(default_factory=list)
    next_message_id: int = 1
    topics: dict[int, Topic] = field(default_factory=dict)
    reply_keyboard: JSONDict | None = None
    chat_actions: list[str] = field(default_factory=list)

    def to_dict(self) -> JSONDict:
        """The Bot API Chat object as embedded in a Message."""
        data: JSONDict = {"id": self.id, "type": self.type}
        for key in ("title", "first_name", "last_name", "username"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.is_forum:
            data["is_forum"] = True
        return data

    def add_message(
        self, sender: JSONDict, from_bot: bool, thread_id: int | None, content: JSONDict,
        date: int,
    ) -> StoredMessage:
        """Store a message in either direction under the chat's next id (None fields left out)."""
        message: JSONDict = {
            "message_id": self.next_message_id,
            "from": sender,
            "chat": self.to_dict(),
            "date": date,
        }
        self.next_message_id += 1
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        message.update({k: v for k, v in content.items() if v is not None})
        stored = StoredMessage(message=message, from_bot=from_bot)
        self.messages.append(stored)
        return stored

    def find(self, message_id: object) -> StoredMessage | None:
        """The live (not deleted) message with this id, or None."""
        if not isinstance(message_id, int):
            return None
        for stored in reversed(self.messages):
            if stored.message_id == message_id:
                return None if stored.deleted else stored
        return None

    def live_topic(self, thread_id: int) -> Topic | None:
        """The topic with this id unless deleted."""
        topic = self.topics.get(thread_id)
        return None if topic is None or topic.deleted else topic


@dataclass
class CallbackQuery:
    """A button press and, once the bot answered it, the answer (text, show_alert, url)."""

    id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    label: str
    answered: bool = False
    text: str | None = None
    show_alert: bool = False
    url: str | None = None


@dataclass
class StoredFile:
    """A file known to the emulator, reachable by file_id and downloadable by file_path."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes | None = None
    #: TDLib's name of its type (Photo, VoiceNote, Document...): what it may be sent as.
    file_type: str = "Photo"
    #: Its object's fields besides ids and size (duration, file_name, mime_type, emoji...).
    meta: JSONDict = field(default_factory=dict)

    def to_dict(self) -> JSONDict:
        """The Bot API File object."""
        data: JSONDict = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_path": self.file_path,
        }
        if self.data is not None:
            data["file_size"] = len(self.data)
        return data


@dataclass
class Webhook:
    """The webhook set with setWebhook, and its delivery health for getWebhookInfo."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    allowed_updates: list[str] | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None
    delivered: int = 0
