"""Forum topics on the emulated Telegram: create, edit, close, reopen and delete.

A topic's id is the id of the service message creating it, as on Telegram; each change posts
its service message in the topic, and deleting a topic deletes its messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .errors import bad_request
from .state import Topic

if TYPE_CHECKING:
    from .emulator import TelegramEmulator
    from .state import Chat, StoredMessage

JSONDict = dict[str, Any]
Params = dict[str, Any]

FORUM_ICON_COLORS = (7322096, 16766590, 13338331, 9367192, 16749490, 16478047)


class ForumTopics:
    """The forum topic methods; topics live in their :class:`~.state.Chat`."""

    def __init__(self, emulator: TelegramEmulator) -> None:
        self.emu = emulator

    def methods(self) -> dict[str, Callable[[Params], Awaitable[Any]]]:
        """Bot API method name -> implementation, merged into the emulator's table."""
        return {
            "createForumTopic": self.create_forum_topic,
            "editForumTopic": self.edit_forum_topic,
            "closeForumTopic": self.close_forum_topic,
            "reopenForumTopic": self.reopen_forum_topic,
            "deleteForumTopic": self.delete_forum_topic,
        }

    def _topic(self, chat: Chat, params: Params) -> Topic:
        """The live topic a request names, or Telegram's refusal."""
        if not chat.is_forum:
            raise bad_request("the chat is not a forum")
        thread_id = params.get("message_thread_id")
        topic = chat.live_topic(thread_id) if isinstance(thread_id, int) else None
        if topic is None:
            raise bad_request("TOPIC_ID_INVALID")
        return topic

    def _service(self, chat: Chat, thread_id: int, content: JSONDict) -> StoredMessage:
        """A service message (topic created, edited, closed...) posted in the topic."""
        return self.emu.new_message(chat, self.emu.bot.to_dict(), True, thread_id, content)

    async def create_forum_topic(self, params: Params) -> JSONDict:
        chat = self.emu.core.chat(params)
        if chat.type != "supergroup" or not chat.is_forum:
            raise bad_request("the chat is not a forum")
        name = params.get("name") or ""
        if not name:
            raise bad_request("TOPIC_TITLE_EMPTY")
        if len(name) > 128:
            raise bad_request("TOPIC_TITLE_TOO_LONG")
        icon_color = params.get("icon_color", FORUM_ICON_COLORS[0])
        if icon_color not in FORUM_ICON_COLORS:
            raise bad_request("TOPIC_ICON_COLOR_INVALID")
        thread_id = chat.next_message_id
        topic = Topic(thread_id, name, icon_color, params.get("icon_custom_emoji_id"))
        chat.topics[thread_id] = topic
        created: JSONDict = {"name": name, "icon_color": icon_color}
        if topic.icon_custom_emoji_id:
            created["icon_custom_emoji_id"] = topic.icon_custom_emoji_id
        self._service(chat, thread_id, {"forum_topic_created": created})
        return topic.to_dict()

    async def edit_forum_topic(self, params: Params) -> bool:
        chat = self.emu.core.chat(params)
        topic = self._topic(chat, params)
        name = params.get("name")
        emoji = params.get("icon_custom_emoji_id")
        if name is not None and not 1 <= len(name) <= 128:
            raise bad_request("TOPIC_TITLE_EMPTY" if not name else "TOPIC_TITLE_TOO_LONG")
        if (name is None or name == topic.name) and (
            emoji is None or emoji == (topic.icon_custom_emoji_id or "")
        ):
            raise bad_request("TOPIC_NOT_MODIFIED")
        edited: JSONDict = {}
        if name is not None:
            topic.name = edited["name"] = name
        if emoji is not None:
            topic.icon_custom_emoji_id = emoji or None
            edited["icon_custom_emoji_id"] = emoji
        self._service(chat, topic.thread_id, {"forum_topic_edited": edited})
        return True

    async def close_forum_topic(self, params: Params) -> bool:
        return self._set_topic_closed(params, closed=True)

    async def reopen_forum_topic(self, params: Params) -> bool:
        return self._set_topic_closed(params, closed=False)

    def _set_topic_closed(self, params: Params, *, closed: bool) -> bool:
        chat = self.emu.core.chat(params)
        topic = self._topic(chat, params)
        if topic.closed == closed:
            raise bad_request("TOPIC_NOT_MODIFIED")
        topic.closed = closed
        kind = "forum_topic_closed" if closed else "forum_topic_reopened"
        self._service(chat, topic.thread_id, {kind: {}})
        return True

    async def delete_forum_topic(self, params: Params) -> bool:
        chat = self.emu.core.chat(params)
        topic = self._topic(chat, params)
        topic.deleted = True
        for stored in chat.messages:
            if stored.thread_id == topic.thread_id:
                stored.deleted = True
        self.emu.notify()
        return True
