"""Telegram's HTML parse mode: what the emulator accepts and the entities it yields.

The HTML checker of the emulator (``emulator.py``), also used by the bot to check campaign
texts before they are saved: only Telegram's tags, properly nested; only its entities.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

JSONDict = dict[str, Any]


class HtmlParseError(ValueError):
    """Text that Telegram's HTML parse mode refuses ("can't parse entities")."""


_HTML_TAG_ENTITY = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_ENTITY_RE = re.compile(r"&(?:#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,8})|([a-zA-Z][a-zA-Z0-9]*));")
_HTML_NAME_RE = re.compile(r"[a-zA-Z0-9_-]*")
_HTML_UNQUOTED_RE = re.compile(r"[^\s>]*")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: the unit of Telegram's entity offsets and lengths."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class _OpenTag:
    name: str
    start: int  # UTF-16 offset in the plain text
    attrs: dict[str, str]
    language: str | None = None


def _decode_entity(match: re.Match[str], byte_offset: int) -> str:
    dec, hexa, name = match.groups()
    if name is not None:
        if name not in _HTML_NAMED_ENTITIES:
            raise HtmlParseError(
                f'Unsupported HTML entity "&{name};" at byte offset {byte_offset}; only &lt; '
                "&gt; &amp; &quot; and numeric entities are supported"
            )
        return _HTML_NAMED_ENTITIES[name]
    code = int(dec) if dec is not None else int(hexa, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise HtmlParseError(f"Invalid numeric HTML entity at byte offset {byte_offset}")
    return chr(code)


def _unescape_attr(value: str) -> str:
    """Decode entities in an attribute value leniently (unknown ones stay as written)."""

    def one(match: re.Match[str]) -> str:
        dec, hexa, name = match.groups()
        if name is not None:
            return _HTML_NAMED_ENTITIES.get(name, match.group(0))
        code = int(dec) if dec is not None else int(hexa, 16)
        return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else ""

    return _HTML_ENTITY_RE.sub(one, value)


def parse_html(source: str) -> tuple[str, list[JSONDict]]:
    """Parse Telegram HTML into (plain text, entities), refusing what Telegram refuses.

    Follows Telegram's rules: only its tags, properly nested and closed; only &lt; &gt;
    &amp; &quot; and numeric character references (a lone "&" stays literal). Entity offsets
    are UTF-16 code units, like Telegram's.
    """
    out: list[str] = []
    pos = 0
    stack: list[_OpenTag] = []
    entities: list[JSONDict] = []
    i, n = 0, len(source)

    def offset(k: int) -> int:
        return len(source[:k].encode("utf-8"))

    while i < n:
        ch = source[i]
        if ch == "&":
            match = _HTML_ENTITY_RE.match(source, i)
            if match is None:
                piece, i = "&", i + 1
            else:
                piece, i = _decode_entity(match, offset(i)), match.end()
        elif ch == "<" and source.startswith("</", i):
            end = source.find(">", i)
            if end == -1:
                raise HtmlParseError(f"Unclosed end tag at byte offset {offset(i)}")
            name = source[i + 2 : end].strip().lower()
            if not stack:
                raise HtmlParseError(f'Unexpected end tag "</{name}>" at byte offset {offset(i)}')
            top = stack.pop()
            if top.name != name:
                raise HtmlParseError(
                    f'Unmatched end tag at byte offset {offset(i)}, expected "</{top.name}>", '
                    f'found "</{name}>"'
                )
            _close_tag(top, pos, stack, entities)
            i = end + 1
            continue
        elif ch == "<":
            tag, i = _read_start_tag(source, i, offset)
            tag.start = pos
            stack.append(tag)
            continue
        else:
            piece, i = ch, i + 1
        out.append(piece)
        pos += utf16_len(piece)
    if stack:
        raise HtmlParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _read_start_tag(source: str, i: int, offset: Callable[[int], int]) -> tuple[_OpenTag, int]:
    start_offset = offset(i)
    name_match = _HTML_NAME_RE.match(source, i + 1)
    assert name_match is not None  # the pattern matches the empty string
    name = name_match.group(0).lower()
    if name not in _HTML_TAG_ENTITY:
        raise HtmlParseError(f'Unsupported start tag "{name}" at byte offset {start_offset}')
    j = name_match.end()
    attrs: dict[str, str] = {}
    n = len(source)
    while True:
        while j < n and source[j].isspace():
            j += 1
        if j >= n:
            raise HtmlParseError(f"Unclosed start tag at byte offset {start_offset}")
        if source[j] == ">":
            j += 1
            break
        attr_match = _HTML_NAME_RE.match(source, j)
        assert attr_match is not None
        attr = attr_match.group(0).lower()
        if not attr:
            raise HtmlParseError(
                f'Empty attribute name in the tag "{name}" at byte offset {start_offset}'
            )
        j = attr_match.end()
        while j < n and source[j].isspace():
            j += 1
        value = ""
        if j < n and source[j] == "=":
            j += 1
            while j < n and source[j].isspace():
                j += 1
            if j < n and source[j] in "\"'":
                close = source.find(source[j], j + 1)
                if close == -1:
                    raise HtmlParseError(f"Unclosed start tag at byte offset {start_offset}")
                value, j = source[j + 1 : close], close + 1
            else:
                unquoted = _HTML_UNQUOTED_RE.match(source, j)
                assert unquoted is not None
                value, j = unquoted.group(0), unquoted.end()
        attrs[attr] = _unescape_attr(value)
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise HtmlParseError(
            f'Tag "span" must have class "tg-spoiler" at byte offset {start_offset}'
        )
    if name == "tg-emoji" and not attrs.get("emoji-id"):
        raise HtmlParseError(
            f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {start_offset}'
        )
    return _OpenTag(name=name, start=0, attrs=attrs), j


def _close_tag(tag: _OpenTag, pos: int, stack: list[_OpenTag], entities: list[JSONDict]) -> None:
    length = pos - tag.start
    kind = _HTML_TAG_ENTITY[tag.name]
    if tag.name == "code" and stack and stack[-1].name == "pre":
        language = tag.attrs.get("class", "")
        if language.startswith("language-"):
            stack[-1].language = language[len("language-") :]
            return
    if length <= 0:
        return
    entity: JSONDict = {"type": kind, "offset": tag.start, "length": length}
    if kind == "text_link":
        href = tag.attrs.get("href", "")
        if not href:
            return
        entity["url"] = href
    elif kind == "custom_emoji":
        entity["custom_emoji_id"] = tag.attrs["emoji-id"]
    elif kind == "pre" and tag.language:
        entity["language"] = tag.language
    elif kind == "blockquote" and "expandable" in tag.attrs:
        entity["type"] = "expandable_blockquote"
    entities.append(entity)


def strip_text(text: str, entities: list[JSONDict]) -> tuple[str, list[JSONDict]]:
    """Trim surrounding whitespace as Telegram does, moving and clipping entities to match."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    total = utf16_len(stripped)
    kept: list[JSONDict] = []
    for entity in entities:
        start = max(0, entity["offset"] - lead)
        end = min(total, entity["offset"] + entity["length"] - lead)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept
