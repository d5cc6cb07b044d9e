"""Append-only tables read as versions (the console's script edits and setting changes):
the newest row's id tells every instance, in one indexed read, whether to read them again."""

from __future__ import annotations

from tortoise.models import Model


async def newest_id(model: type[Model]) -> int:
    """The id of ``model``'s newest row, 0 while it is empty."""
    newest = await model.all().order_by("-id").only("id").first()
    return int(newest.pk) if newest is not None else 0
