"""``carebot inbox``: the updates waiting to be handled, and those parked for a person.

    carebot inbox                 counts, then the parked updates (newest first)
    carebot inbox show ID         one update: what it is, its attempts, its error, its content
    carebot inbox retry ID [ID…]  handle these parked updates again (--all: every parked one)
    carebot inbox failed          messages the sender gave up on (--seen marks them looked at)

An update is parked when its handler failed four times (bot/inbox.py); the reason is usually
a bug or an outage, so fix that first, then retry. Handled updates are kept two days.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bot import inbox
from bot.cli.database import database
from bot.cli.say import fail, say
from bot.clock import SystemClock
from bot.config import Settings
from db.models import FailedSend, InboxStatus, InboxUpdate


def add_commands(sub: Any) -> None:
    parser = sub.add_parser(
        "inbox", help="updates waiting or parked (list, show, retry) and failed sends",
        description="Every Telegram update is stored before it is handled; one whose handler "
                    "kept failing is parked here for a person.")
    parser.add_argument("action", nargs="?", choices=["list", "show", "retry", "failed"],
                        default="list")
    parser.add_argument("ids", nargs="*", type=int, metavar="ID", help="inbox row ids")
    parser.add_argument("--all", action="store_true", help="retry: every parked update")
    parser.add_argument("--seen", action="store_true",
                       help="failed: mark the listed failures as looked at")
    parser.add_argument("--limit", type=int, default=50, help="rows to list (default 50)")
    parser.set_defaults(run=run_inbox)


async def run_inbox(settings: Settings, args: argparse.Namespace) -> int:
    async with database(settings):
        if args.action == "show":
            return await _show(args.ids)
        if args.action == "retry":
            return await _retry(args.ids, every=args.all)
        if args.action == "failed":
            return await _failed(args.limit, seen=args.seen)
        return await _list(args.limit)


async def _list(limit: int) -> int:
    figures = await inbox.stats(SystemClock().now())
    say("inbox.figures", waiting=figures.depth, oldest=f"{figures.oldest_seconds:.0f}",
        parked=figures.parked)
    rows = await InboxUpdate.filter(status=InboxStatus.PARKED).order_by("-id").limit(limit)
    for row in rows:
        say("inbox.row", id=row.id, update=row.update_id, kind=row.kind, chat=row.chat_key,
            attempts=row.attempts, error=row.last_error[:80])
    if rows:
        say("inbox.hint")
    return 0


async def _show(ids: list[int]) -> int:
    if not ids:
        fail("inbox show", "inbox.show_which")
        return 2
    for row_id in ids:
        row = await InboxUpdate.get_or_none(id=row_id)
        if row is None:
            fail("inbox show", "inbox.no_row", id=row_id)
            return 1
        say("inbox.show", id=row.id, update=row.update_id, kind=row.kind, chat=row.chat_key,
            status=row.status, attempts=row.attempts,
            received=f"{row.received_at:%Y-%m-%d %H:%M:%S}")
        if row.last_error:
            say("inbox.error", error=row.last_error)
        print(json.dumps(row.payload, ensure_ascii=False, indent=2))
    return 0


async def _retry(ids: list[int], *, every: bool) -> int:
    if not ids and not every:
        fail("inbox retry", "inbox.retry_which")
        return 2
    n = await inbox.retry_parked(None if every else ids)
    say("inbox.retried", n=n)
    return 0 if n or every else 1


async def _failed(limit: int, *, seen: bool) -> int:
    open_rows = FailedSend.filter(seen_at__isnull=True)
    rows = await open_rows.order_by("-id").limit(limit)
    say("inbox.failed", n=await open_rows.count())
    for row in rows:
        say("inbox.failed_row", id=row.id, when=f"{row.created_at:%Y-%m-%d %H:%M}",
            lane=row.lane, method=row.method, chat=row.chat_id, error=row.error[:80])
    if seen and rows:
        await FailedSend.filter(id__in=[r.id for r in rows]).update(seen_at=SystemClock().now())
        say("inbox.seen", n=len(rows))
    return 0
