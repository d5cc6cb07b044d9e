"""Request bodies read within limits: size, JSON nesting, numbers, text (issue 15).

A body is read in chunks up to its route's cap, so a 20 MB POST costs the server nothing
but a 413. JSON above a few kilobytes is parsed off the event loop, so one big request
cannot stall the webhook or ``/healthz``. Whatever cannot be used (not JSON, nested too
deep, a number of thousands of digits, NaN, a NUL or lone surrogate no database stores)
raises :class:`BodyError` with the status and a message for the sender, never a 500.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from typing import Any

from aiohttp import web

CHUNK = 64 * 1024
OFF_LOOP = 64 * 1024  # bodies larger than this are parsed in a worker thread
# Text no database stores: NUL (PostgreSQL refuses it) and a lone UTF-16 surrogate.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


class BodyError(Exception):
    """A body refused: ``status`` (400 or 413) and a message saying what to change."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_capped(request: web.Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to pass ``limit`` bytes (by its
    Content-Length before reading anything, else while reading)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyError(413, f"the body is {declared:,} bytes; send at most {limit:,}")
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise BodyError(413, f"the body is over {limit:,} bytes; send at most {limit:,}")
        chunks.append(chunk)
    return b"".join(chunks)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyError(400, f"the number {text[:20]}… is out of range")
    return value


def _constant(name: str) -> Any:
    raise BodyError(400, f"{name} is not a number JSON allows")


def parse_json(data: bytes, max_depth: int) -> Any:
    """Decode and check a JSON body; raises :class:`BodyError` (400) saying why not."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BodyError(400, f"the body is not UTF-8 text (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_float=_finite, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise BodyError(400, f"the body is not valid JSON: {exc.msg} at line {exc.lineno} "
                             f"column {exc.colno}") from None
    except RecursionError:
        raise BodyError(400, f"the JSON is nested too deeply (at most {max_depth} levels)"
                        ) from None
    except ValueError:  # an integer of more digits than Python converts (4,300)
        raise BodyError(400, "the body holds a number with thousands of digits; no field "
                             "takes one") from None
    check_shape(value, max_depth)
    return value


def check_shape(value: Any, max_depth: int) -> None:
    """Nesting at most ``max_depth`` levels; no text a database would refuse (NUL, a lone
    UTF-16 surrogate), which would fail the store again at every retry."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                raise BodyError(400, "a text in the body holds a NUL character or a lone "
                                     "UTF-16 surrogate escape, which cannot be stored")
            continue
        if not isinstance(item, (dict, list)):
            continue
        if depth > max_depth:
            raise BodyError(400, f"the JSON is nested too deeply (at most {max_depth} levels)")
        children = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in children:
            if isinstance(key, str) and _UNSTORABLE.search(key):
                raise BodyError(400, "a key in the body holds a NUL character or a lone "
                                     "UTF-16 surrogate escape")
            if isinstance(child, (dict, list, str)):
                stack.append((child, depth + 1))


async def read_json(request: web.Request, *, limit: int, max_depth: int) -> Any:
    """Read (capped) and parse a JSON body, in a worker thread when it is large."""
    data = await read_capped(request, limit)
    if len(data) > OFF_LOOP:
        return await asyncio.to_thread(parse_json, data, max_depth)
    return parse_json(data, max_depth)
