"""What the console's action pages share about a posted form: a refusal that shows the page
again with a message (what was typed kept), its text fields, and one text field read and
checked."""

from __future__ import annotations

from typing import Any

from aiohttp import web


async def posted_texts(request: web.Request) -> dict[str, str]:
    """The posted form's text fields (files and the CSRF token left out)."""
    return {k: v for k, v in (await request.post()).items()
            if isinstance(v, str) and k != "_csrf"}


class Refused(Exception):
    """A post the rules or the form refuse: the page again, with a message by key."""

    def __init__(self, key: str, status: int = 409, **args: Any) -> None:
        super().__init__(key)
        self.key, self.status, self.fmt = key, status, args


def text_field(form: dict[str, str], name: str, limit: int, *, empty_key: str,
               too_long_key: str) -> str:
    """The field, trimmed, with Windows line ends made plain; refused when empty or longer
    than ``limit`` characters."""
    value = form.get(name, "").replace("\r\n", "\n").strip()
    if not value:
        raise Refused(empty_key, 422)
    if len(value) > limit:
        raise Refused(too_long_key, 422, limit=limit)
    return value
