"""Drivers that act as people on the emulated Telegram: owners in private chats, staff in groups.

They run in the same event loop as the emulator and change its state directly (no HTTP):
a driver's message becomes an update the bot receives by polling or webhook, exactly as if
it came from Telegram. Transcripts show what a person would see, so tests read like
conversations: ``owner.send_text("/start")`` then ``owner.bot_texts()``.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .emulator import Chat, TelegramEmulator, User

JSONDict = dict[str, Any]


class _Own(enum.Enum):
    """Sentinel: "the sharing user's own id" (a contact shared by its owner)."""

    ID = "own"


OWN_ID: Literal[_Own.ID] = _Own.ID


def _view(stored_message: JSONDict, from_bot: bool) -> JSONDict:
    return {**stored_message, "from_bot": from_bot}


def _visible_text(message: JSONDict) -> str | None:
    """What the person reads: the text or caption, already free of tags and entities."""
    text = message.get("text", message.get("caption"))
    return text if isinstance(text, str) else None


def _command_entities(text: str) -> list[JSONDict] | None:
    """A text starting with "/" carries a bot_command entity, which PTB's CommandHandler needs."""
    if not text.startswith("/"):
        return None
    command = text.split(maxsplit=1)[0]
    return [{"type": "bot_command", "offset": 0, "length": len(command.encode("utf-16-le")) // 2}]


class UserDriver:
    """One Telegram user and their private chat with the bot (chat id == user id)."""

    def __init__(self, emulator: TelegramEmulator, user_id: int) -> None:
        self.emulator = emulator
        self.user_id = user_id

    def __repr__(self) -> str:
        return f"UserDriver({self.user_id})"

    @property
    def chat_id(self) -> int:
        """The private chat's id, which Telegram makes equal to the user's id."""
        return self.user_id

    @property
    def user(self) -> User:
        """The emulator's record of this user."""
        return self.emulator.users[self.user_id]

    @property
    def chat(self) -> Chat:
        """The emulator's record of the private chat."""
        return self.emulator.chats[self.user_id]

    # ---------------------------------------------------------------- acting

    def send_text(self, text: str) -> JSONDict:
        """Send a text message to the bot; returns the Message as the bot will receive it."""
        return self.emulator.user_message(
            self.chat_id, self.user_id, {"text": text, "entities": _command_entities(text)}
        )

    def share_contact(
        self,
        phone: str | None = None,
        *,
        user_id: int | None | Literal[_Own.ID] = OWN_ID,
        first_name: str | None = None,
        last_name: str | None = None,
    ) -> JSONDict:
        """Share a contact: by default one's own (user_id = own id), as the contact button does.

        Pass ``user_id=None`` (a contact typed in or forwarded without a Telegram account) or
        another id to simulate sharing someone else's contact.
        """
        own = self.user
        contact: JSONDict = {
            "phone_number": phone or f"+86138{self.user_id % 10**8:08d}",
            "first_name": first_name or own.first_name,
        }
        last = last_name if last_name is not None else own.last_name
        if last:
            contact["last_name"] = last
        contact_user = self.user_id if user_id is OWN_ID else user_id
        if contact_user is not None:
            contact["user_id"] = contact_user
        return self.emulator.user_message(self.chat_id, self.user_id, {"contact": contact})

    def send_photo(self, caption: str | None = None) -> JSONDict:
        """Send a (tiny, downloadable) photo with an optional caption."""
        stored = self.emulator.tiny_photo()
        return self.emulator.user_message(
            self.chat_id,
            self.user_id,
            {"photo": self.emulator.photo_sizes(stored), "caption": caption},
        )

    def press(self, label: str) -> JSONDict:
        """Press the inline button ``label`` on the latest bot message showing it.

        Returns the CallbackQuery; raises AssertionError listing the labels on offer if none.
        """
        return self.emulator.press_button(self.chat_id, self.user_id, label)

    def block(self) -> None:
        """Block the bot: sends to this chat now fail with 403."""
        self.emulator.set_blocked(self.user_id, True)

    def unblock(self) -> None:
        """Unblock the bot."""
        self.emulator.set_blocked(self.user_id, False)

    # ---------------------------------------------------------------- reading

    def transcript(self, *, include_deleted: bool = False) -> list[JSONDict]:
        """All messages of the chat in order, both directions, each with a "from_bot" key."""
        return [
            _view(m.message, m.from_bot)
            for m in self.chat.messages
            if include_deleted or not m.deleted
        ]

    def bot_messages(self) -> list[JSONDict]:
        """The bot's messages still in the chat, oldest first."""
        return [m for m in self.transcript() if m["from_bot"]]

    def last_bot_message(self) -> JSONDict:
        """The bot's latest message; AssertionError when the bot has not written yet."""
        messages = self.bot_messages()
        if not messages:
            raise AssertionError(f"the bot has sent nothing to chat {self.chat_id}")
        return messages[-1]

    def bot_texts(self) -> list[str]:
        """The bot's texts and captions as the user reads them (no tags, entities decoded)."""
        return [t for t in map(_visible_text, self.bot_messages()) if t is not None]

    @property
    def callback_answers(self) -> list[JSONDict]:
        """The bot's answers to this user's presses here, in order of pressing."""
        return [
            {
                "callback_query_id": q.id,
                "label": q.label,
                "data": q.data,
                "text": q.text,
                "show_alert": q.show_alert,
                "url": q.url,
            }
            for q in self.emulator.callbacks.values()
            if q.user_id == self.user_id and q.chat_id == self.chat_id and q.answered
        ]

    @property
    def reply_keyboard(self) -> JSONDict | None:
        """The ReplyKeyboardMarkup on screen (e.g. a contact button), None if removed."""
        return self.chat.reply_keyboard

    async def wait_for_bot_messages(self, count: int = 1, timeout: float = 5.0) -> list[JSONDict]:
        """Wait until the chat holds at least ``count`` bot messages; return them all."""
        await self.emulator.wait_until(
            lambda: len(self.bot_messages()) >= count,
            timeout,
            f"{count} bot message(s) in chat {self.chat_id}",
        )
        return self.bot_messages()


class GroupDriver:
    """A group or forum supergroup the bot administers (e.g. the dealership's staff group)."""

    def __init__(self, emulator: TelegramEmulator, chat_id: int) -> None:
        self.emulator = emulator
        self.chat_id = chat_id

    def __repr__(self) -> str:
        return f"GroupDriver({self.chat_id})"

    @property
    def chat(self) -> Chat:
        """The emulator's record of the group."""
        return self.emulator.chats[self.chat_id]

    @staticmethod
    def _user_id(from_user: UserDriver | int) -> int:
        return from_user.user_id if isinstance(from_user, UserDriver) else from_user

    def send_text(
        self, from_user: UserDriver | int, text: str, message_thread_id: int | None = None
    ) -> JSONDict:
        """Post a text as ``from_user``, in a topic when ``message_thread_id`` is given."""
        return self.emulator.user_message(
            self.chat_id,
            self._user_id(from_user),
            {"text": text, "entities": _command_entities(text)},
            message_thread_id,
        )

    def press(
        self, from_user: UserDriver | int, label: str, message_thread_id: int | None = None
    ) -> JSONDict:
        """Press inline button ``label`` on the latest bot message showing it (in the topic)."""
        return self.emulator.press_button(
            self.chat_id, self._user_id(from_user), label, message_thread_id
        )

    @property
    def topics(self) -> dict[int, JSONDict]:
        """Live forum topics: thread id -> {"name", "icon_color", "closed"}."""
        return {
            t.thread_id: {"name": t.name, "icon_color": t.icon_color, "closed": t.closed}
            for t in self.chat.topics.values()
            if not t.deleted
        }

    def topic_id(self, name: str) -> int:
        """The thread id of the live topic called ``name``; AssertionError if there is none."""
        for thread_id, topic in self.topics.items():
            if topic["name"] == name:
                return thread_id
        raise AssertionError(f"no topic {name!r} in group {self.chat_id}: {self.topics}")

    def messages(self, thread_id: int | None = None) -> list[JSONDict]:
        """Messages still in the group (all, or one topic's), each with a "from_bot" key."""
        return [
            _view(m.message, m.from_bot)
            for m in self.chat.messages
            if not m.deleted and (thread_id is None or m.thread_id == thread_id)
        ]

    def bot_texts(self, thread_id: int | None = None) -> list[str]:
        """The bot's texts and captions (all, or one topic's) as people read them."""
        return [
            t
            for t in (_visible_text(m) for m in self.messages(thread_id) if m["from_bot"])
            if t is not None
        ]
