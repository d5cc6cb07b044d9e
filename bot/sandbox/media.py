"""Media on the emulated Telegram: file messages, locations, their send methods, copyMessage.

Kept out of ``emulator.py`` so neither module grows past its size (issue 19). Owners send
voice notes, documents, stickers, locations, videos and audio; the bot relays them between
a private chat and a staff topic with ``copyMessage``. The rules follow Telegram's server
(tdlib/telegram-bot-api and TDLib): a copy has no "forwarded from" header and answers a
``MessageId``; ``caption`` replaces the caption only of media that has one (animation, audio,
document, photo, video, voice) and is ignored for the rest; service messages can't be copied;
a file_id of a photo can't be used as a document-like file nor the other way round.
"""

from __future__ import annotations

import base64
import copy
import re
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

from .errors import ApiError, bad_request
from .rules import format_text
from .schema import UploadedFile

if TYPE_CHECKING:
    from .emulator import TelegramEmulator
    from .state import StoredFile

JSONDict = dict[str, Any]
Params = dict[str, Any]

MAX_CAPTION_LENGTH = 1024

# Tiny stand-ins a bot can download: the photo is a real 1x1 JPEG, the sticker a real 1x1
# WebP; the others start with their format's signature (enough to sniff, not to play).
TINY_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b"
    "0b0c1912130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e3334"
    "32ffc0000b080001000101011100ffc4001f0000010501010101010100000000000000000102030405060708"
    "090a0bffc400b5100002010303020403050504040000017d01020300041105122131410613516107227114"
    "328191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435363738393a434445464748"
    "494a535455565758595a636465666768696a737475767778797a838485868788898a92939495969798999aa2"
    "a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9"
    "eaf1f2f3f4f5f6f7f8f9faffda0008010100003f00fbd3ffd9"
)
TINY_WEBP = base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")
TINY_OGG = b"OggS\x00\x02" + bytes(20) + b"\x13OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00"
TINY_PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
TINY_MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom\x00\x00\x00\x08free"
TINY_MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00" + bytes(16)


@dataclass(frozen=True)
class FileKind:
    """One kind of file message: its Message field, send method and how Telegram files it."""

    field: str  # the Message field and the kind's name: "voice"
    method: str  # the Bot API method sending it: "sendVoice"
    file_type: str  # TDLib's name, as in "can't use file of type Photo as VoiceNote"
    folder: str  # file_path's folder, as Telegram names it
    ext: str
    sample: bytes
    defaults: Mapping[str, Any]  # the object's fields besides ids and size
    caption: bool = True  # whether Telegram lets the message carry a caption
    from_params: tuple[str, ...] = ()  # send parameters that describe a new file


KINDS: dict[str, FileKind] = {
    kind.field: kind
    for kind in (
        FileKind("photo", "sendPhoto", "Photo", "photos", "jpg", TINY_JPEG,
                 {"width": 800, "height": 600}),
        FileKind("voice", "sendVoice", "VoiceNote", "voice", "oga", TINY_OGG,
                 {"duration": 3, "mime_type": "audio/ogg"}, from_params=("duration",)),
        FileKind("document", "sendDocument", "Document", "documents", "pdf", TINY_PDF,
                 {"file_name": "document.pdf", "mime_type": "application/pdf"}),
        FileKind("sticker", "sendSticker", "Sticker", "stickers", "webp", TINY_WEBP,
                 {"width": 512, "height": 512, "is_animated": False, "is_video": False,
                  "type": "regular", "emoji": "👍"}, caption=False, from_params=("emoji",)),
        FileKind("video", "sendVideo", "Video", "videos", "mp4", TINY_MP4,
                 {"width": 640, "height": 360, "duration": 5, "mime_type": "video/mp4"},
                 from_params=("width", "height", "duration")),
        FileKind("audio", "sendAudio", "Audio", "music", "mp3", TINY_MP3,
                 {"duration": 30, "mime_type": "audio/mpeg", "file_name": "audio.mp3"},
                 from_params=("duration", "performer", "title")),
        FileKind("video_note", "sendVideoNote", "VideoNote", "video_notes", "mp4", TINY_MP4,
                 {"length": 240, "duration": 4}, caption=False, from_params=("duration", "length")),
    )
}
#: The start of Telegram's file_ids for each file type (a reader can tell them apart).
FILE_ID_PREFIXES = {
    "Photo": "AgAC", "VoiceNote": "AwAC", "Document": "BQAC", "Sticker": "CAAC",
    "Video": "BAAC", "Audio": "CQAC", "VideoNote": "DQAC",
}
#: The message kinds drivers' ``bot_media()`` reports, in the order they are looked for.
MEDIA_KINDS = ("photo", "voice", "document", "sticker", "location", "video", "audio", "video_note")
#: Media whose copy takes a new caption (TDLib's dup_message_content); others ignore it.
CAPTIONED = frozenset({"animation", "audio", "document", "photo", "video", "voice"})
#: What a copy carries over: the content (one of the first group) and how it is shown.
COPYABLE = ("text", "photo", "voice", "document", "sticker", "location", "venue", "video",
            "audio", "contact", "animation", "video_note", "dice")
#: Media whose caption may be shown above it; a new caption sets that anew.
_ABOVE = frozenset({"animation", "photo", "video"})
_COPIED_WITH = ("entities", "link_preview_options", "caption", "caption_entities",
                "show_caption_above_media", "has_media_spoiler")


def media_of(message: JSONDict) -> tuple[str, str | None, str | None] | None:
    """(kind, file_unique_id or None, caption) of a media message; None for anything else."""
    for kind in MEDIA_KINDS:
        value = message.get(kind)
        if not value:
            continue
        item = value[-1] if isinstance(value, list) else value  # a photo: its largest size
        unique = item.get("file_unique_id") if isinstance(item, dict) else None
        caption = message.get("caption")
        return kind, unique, caption if isinstance(caption, str) else None
    return None


def content_kind(content: JSONDict) -> str | None:
    """Which copyable content a message holds (text, photo, voice...), None for service ones."""
    return next((kind for kind in COPYABLE if content.get(kind) is not None), None)


def copied_content(message: JSONDict) -> JSONDict:
    """What a copy of ``message`` holds: its content without sender, date, thread or keyboard."""
    if content_kind(message) is None:
        raise bad_request("the message can't be copied")
    return {
        key: copy.deepcopy(message[key])
        for key in (*COPYABLE, *_COPIED_WITH)
        if message.get(key) is not None
    }


class MediaApi:
    """The emulator's media methods (sendVoice, sendDocument, ..., copyMessage) and the
    contents drivers post as users; state stays in the :class:`TelegramEmulator`."""

    def __init__(self, emulator: TelegramEmulator) -> None:
        self.emu = emulator

    def methods(self) -> dict[str, Callable[[Params], Awaitable[Any]]]:
        """Bot API method name -> implementation, merged into the emulator's table."""
        table: dict[str, Callable[[Params], Awaitable[Any]]] = {
            "copyMessage": self.copy_message,
            "sendLocation": self.send_location,
        }
        for kind in KINDS.values():
            if kind.field != "photo":  # sendPhoto is the emulator's own, older method
                table[kind.method] = self._sender(kind)
        return table

    # ----------------------------------------------------------------- files

    def new_file(self, kind: FileKind, data: bytes | None, meta: Mapping[str, Any]) -> StoredFile:
        """Register a file of this kind (data None: known only by URL, not downloadable)."""
        return self.emu.add_file(
            data, kind.folder, kind.ext, file_type=kind.file_type, meta=dict(meta)
        )

    def file_object(self, kind: FileKind, stored: StoredFile) -> JSONDict:
        """The Bot API object (Voice, Document, Sticker...) for a stored file."""
        meta = stored.meta if stored.file_type == kind.file_type else {}
        data: JSONDict = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            **kind.defaults,
            **meta,
        }
        if stored.data is not None:
            data["file_size"] = len(stored.data)
        return data

    def input_file(self, kind: FileKind, params: Params) -> StoredFile:
        """The file a send method names: an upload, a known file_id or an HTTP URL."""
        value = params.get(kind.field)
        meta = {k: params[k] for k in kind.from_params if params.get(k) is not None}
        if isinstance(value, UploadedFile):
            if not value.data:
                raise bad_request("file must be non-empty")
            if "file_name" in kind.defaults and value.filename:
                meta["file_name"] = value.filename
            if "mime_type" in kind.defaults and kind.field != "voice" and value.content_type:
                meta["mime_type"] = value.content_type
            return self.new_file(kind, value.data, meta)
        if isinstance(value, str) and value in self.emu.files:
            stored = self.emu.files[value]
            if (stored.file_type == "Photo") != (kind.file_type == "Photo"):
                raise bad_request(
                    f"can't use file of type {stored.file_type} as {kind.file_type}"
                )
            return stored
        if isinstance(value, str) and re.match(r"https?://\S+$", value):
            return self.new_file(kind, None, meta)
        raise bad_request("wrong file identifier/HTTP URL specified")

    def caption(self, params: Params, *, limit: int = MAX_CAPTION_LENGTH) -> JSONDict:
        """caption and caption_entities as Telegram stores them (None: left out)."""
        text, entities = format_text(params, "caption", "caption_entities", limit, caption=True)
        return {"caption": text or None, "caption_entities": entities or None}

    # ----------------------------------------------------------------- Bot API methods

    def _sender(self, kind: FileKind) -> Callable[[Params], Awaitable[JSONDict]]:
        async def send(params: Params) -> JSONDict:
            chat = self.emu.core.chat(params)
            stored = self.input_file(kind, params)
            content: JSONDict = {kind.field: self.file_object(kind, stored)}
            if kind.caption:
                content.update(self.caption(params))
            return self.emu.core.send(kind.method, chat, params, content)

        return send

    async def send_location(self, params: Params) -> JSONDict:
        """sendLocation: a point (Telegram refuses one off the globe)."""
        chat = self.emu.core.chat(params)
        location = _location(params.get("latitude"), params.get("longitude"))
        for key in ("horizontal_accuracy", "live_period", "heading", "proximity_alert_radius"):
            if params.get(key) is not None:
                location[key] = params[key]
        return self.emu.core.send("sendLocation", chat, params, {"location": location})

    async def copy_message(self, params: Params) -> JSONDict:
        """copyMessage: the source message's content posted anew by the bot; a MessageId."""
        source_chat = self.emu.core.chat(params, "from_chat_id")
        source = source_chat.find(params.get("message_id"))
        if source is None:
            raise bad_request("message to copy not found")
        content = copied_content(source.message)
        if params.get("caption") is not None:  # Telegram: replace when the field is given
            captioned = content_kind(content) in CAPTIONED
            new = self.caption(params, limit=MAX_CAPTION_LENGTH if captioned else sys.maxsize)
            if captioned:
                for key in ("caption", "caption_entities", "show_caption_above_media"):
                    content.pop(key, None)
                content.update(new)
                if params.get("show_caption_above_media") and content_kind(content) in _ABOVE:
                    content["show_caption_above_media"] = True
        chat = self.emu.core.chat(params)
        message = self.emu.core.send("copyMessage", chat, params, content)
        return {"message_id": message["message_id"]}

    # ----------------------------------------------------------------- what users send

    def user_content(
        self, kind_name: str, caption: str | None = None, *, data: bytes | None = None,
        **fields: Any,
    ) -> JSONDict:
        """A new downloadable file of this kind as a user's message content (for drivers).

        ``fields`` override the object's defaults (duration, file_name, emoji...).
        """
        kind = KINDS[kind_name]
        if caption is not None and not kind.caption:
            raise ValueError(f"Telegram gives a {kind_name} no caption")
        meta = {k: v for k, v in fields.items() if v is not None}
        stored = self.new_file(kind, kind.sample if data is None else data, meta)
        if kind.field == "photo":
            obj: Any = self.emu.photo_sizes(stored)
        else:
            obj = self.file_object(kind, stored)
        return {kind.field: obj, "caption": caption}

    @staticmethod
    def location_content(latitude: float, longitude: float) -> JSONDict:
        """A user's location message content (for drivers)."""
        try:
            return {"location": _location(latitude, longitude)}
        except ApiError as exc:  # a test asked for a point off the globe
            raise ValueError(f"no such place: {latitude}, {longitude}") from exc


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _location(latitude: object, longitude: object) -> JSONDict:
    """A Location object; Telegram's answer for a point off the globe (or not a number)."""
    if not (_number(latitude) and _number(longitude)):
        raise bad_request("invalid location specified")
    if not (abs(latitude) <= 90 and abs(longitude) <= 180):  # NaN fails here too
        raise bad_request("invalid location specified")
    return {"latitude": float(latitude), "longitude": float(longitude)}
