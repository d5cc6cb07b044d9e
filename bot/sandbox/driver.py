"""Drivers that act as people on the emulated Telegram: owners in private chats, staff in groups.

They run in the same event loop as the emulator and change its state directly (no HTTP):
a driver's message becomes an update the bot receives by polling or webhook, exactly as if
it came from Telegram. Transcripts show what a person would see, so tests read like
conversations: ``owner.send_text("/start")`` then ``owner.bot_texts()``.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Literal

from .media import media_of

if TYPE_CHECKING:
    from .emulator import TelegramEmulator
    from .state import Chat, User

JSONDict = dict[str, Any]
#: (kind, file_unique_id or None, caption) of one media message; see ``bot_media()``.
Media = tuple[str, str | None, str | None]


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


def _media(messages: list[JSONDict]) -> list[Media]:
    return [m for m in map(media_of, messages) if m is not None]


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
        user_id: int | Literal[_Own.ID] | None = OWN_ID,
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
        return self._send(self.emulator.media.user_content("photo", caption))

    def send_voice(self, caption: str | None = None, *, duration: int = 3) -> JSONDict:
        """Send a voice note (audio/ogg, downloadable with getFile)."""
        return self._send(self.emulator.media.user_content("voice", caption, duration=duration))

    def send_document(
        self,
        caption: str | None = None,
        *,
        file_name: str = "document.pdf",
        mime_type: str = "application/pdf",
        data: bytes | None = None,
    ) -> JSONDict:
        """Send a file as a document (a tiny PDF unless ``data`` is given)."""
        content = self.emulator.media.user_content(
            "document", caption, data=data, file_name=file_name, mime_type=mime_type
        )
        return self._send(content)

    def send_sticker(self, emoji: str = "👍") -> JSONDict:
        """Send a static WebP sticker (no caption: Telegram gives stickers none)."""
        return self._send(self.emulator.media.user_content("sticker", emoji=emoji))

    def send_location(self, latitude: float = 31.2304, longitude: float = 121.4737) -> JSONDict:
        """Share a location (Shanghai unless told)."""
        return self._send(self.emulator.media.location_content(latitude, longitude))

    def send_video(self, caption: str | None = None, *, duration: int = 5) -> JSONDict:
        """Send a video (video/mp4)."""
        return self._send(self.emulator.media.user_content("video", caption, duration=duration))

    def send_audio(
        self,
        caption: str | None = None,
        *,
        duration: int = 30,
        title: str | None = None,
        performer: str | None = None,
    ) -> JSONDict:
        """Send an audio file (audio/mpeg)."""
        content = self.emulator.media.user_content(
            "audio", caption, duration=duration, title=title, performer=performer
        )
        return self._send(content)

    def send_video_note(self, *, duration: int = 4) -> JSONDict:
        """Send a round video note (no caption)."""
        return self._send(self.emulator.media.user_content("video_note", duration=duration))

    def _send(self, content: JSONDict) -> JSONDict:
        return self.emulator.user_message(self.chat_id, self.user_id, content)

    def press(self, label: str) -> JSONDict:
        """Press the inline button ``label`` on the latest bot message showing it.

        Returns the CallbackQuery; raises AssertionError listing the labels on offer if none.
        """
        return self.emulator.press_button(self.chat_id, self.user_id, label)

    def press_again(self, query: JSONDict) -> JSONDict:
        """Press again a button pressed before (what :meth:`press` returned), as from a
        second device still showing the old keyboard."""
        return self.emulator.press_again(self.chat_id, self.user_id, query)

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

    def bot_media(self) -> list[Media]:
        """The bot's media messages (sent or copied) as (kind, file_unique_id, caption): kind
        one of photo, voice, document, sticker, location, video, audio, video_note; a
        location has no file_unique_id (None), a message without caption None."""
        return _media(self.bot_messages())

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

    def send_photo(
        self,
        from_user: UserDriver | int,
        caption: str | None = None,
        message_thread_id: int | None = None,
    ) -> JSONDict:
        """Post a (tiny, downloadable) photo as ``from_user``, in a topic when given."""
        content = self.emulator.media.user_content("photo", caption)
        return self._post(from_user, content, message_thread_id)

    def send_voice(
        self,
        from_user: UserDriver | int,
        caption: str | None = None,
        message_thread_id: int | None = None,
        *,
        duration: int = 3,
    ) -> JSONDict:
        """Post a voice note (audio/ogg) as ``from_user``."""
        content = self.emulator.media.user_content("voice", caption, duration=duration)
        return self._post(from_user, content, message_thread_id)

    def send_document(
        self,
        from_user: UserDriver | int,
        caption: str | None = None,
        message_thread_id: int | None = None,
        *,
        file_name: str = "document.pdf",
        mime_type: str = "application/pdf",
        data: bytes | None = None,
    ) -> JSONDict:
        """Post a document (a tiny PDF unless ``data`` is given) as ``from_user``."""
        content = self.emulator.media.user_content(
            "document", caption, data=data, file_name=file_name, mime_type=mime_type
        )
        return self._post(from_user, content, message_thread_id)

    def send_sticker(
        self,
        from_user: UserDriver | int,
        emoji: str = "👍",
        message_thread_id: int | None = None,
    ) -> JSONDict:
        """Post a static WebP sticker (no caption) as ``from_user``."""
        content = self.emulator.media.user_content("sticker", emoji=emoji)
        return self._post(from_user, content, message_thread_id)

    def send_location(
        self,
        from_user: UserDriver | int,
        latitude: float = 31.2304,
        longitude: float = 121.4737,
        message_thread_id: int | None = None,
    ) -> JSONDict:
        """Share a location (Shanghai unless told) as ``from_user``."""
        content = self.emulator.media.location_content(latitude, longitude)
        return self._post(from_user, content, message_thread_id)

    def send_video(
        self,
        from_user: UserDriver | int,
        caption: str | None = None,
        message_thread_id: int | None = None,
        *,
        duration: int = 5,
    ) -> JSONDict:
        """Post a video (video/mp4) as ``from_user``."""
        content = self.emulator.media.user_content("video", caption, duration=duration)
        return self._post(from_user, content, message_thread_id)

    def send_audio(
        self,
        from_user: UserDriver | int,
        caption: str | None = None,
        message_thread_id: int | None = None,
        *,
        duration: int = 30,
        title: str | None = None,
        performer: str | None = None,
    ) -> JSONDict:
        """Post an audio file (audio/mpeg) as ``from_user``."""
        content = self.emulator.media.user_content(
            "audio", caption, duration=duration, title=title, performer=performer
        )
        return self._post(from_user, content, message_thread_id)

    def send_video_note(
        self,
        from_user: UserDriver | int,
        message_thread_id: int | None = None,
        *,
        duration: int = 4,
    ) -> JSONDict:
        """Post a round video note (no caption) as ``from_user``."""
        content = self.emulator.media.user_content("video_note", duration=duration)
        return self._post(from_user, content, message_thread_id)

    def _post(
        self, from_user: UserDriver | int, content: JSONDict, message_thread_id: int | None
    ) -> JSONDict:
        return self.emulator.user_message(
            self.chat_id, self._user_id(from_user), content, message_thread_id
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

    def bot_media(self, thread_id: int | None = None) -> list[Media]:
        """The bot's media messages (all, or one topic's) as (kind, file_unique_id, caption),
        like :meth:`UserDriver.bot_media`."""
        return _media([m for m in self.messages(thread_id) if m["from_bot"]])
