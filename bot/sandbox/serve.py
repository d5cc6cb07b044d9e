"""``python -m bot.sandbox.serve``: the Telegram emulator alone, in a process of its own.

A benchmark (``carebot bench --only dispatch``) measures a sender against a server that
shares neither its event loop nor its process, as Telegram would; the emulator's flood
limits then see the sender's real pacing, not the pauses of a loop they share. On start it
prints one JSON line, ``{"api_url": ..., "token": ..., "stats_url": ...}``; ``stats_url``
answers :meth:`TelegramEmulator.stats_report` as JSON. It serves until SIGTERM or SIGINT, or
with ``--until-stdin-closes`` until its standard input closes (its parent went away).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence

from bot.sandbox.emulator import TelegramEmulator

log = logging.getLogger(__name__)


def _users(text: str) -> range:
    start, _, count = text.partition(":")
    try:
        first, n = int(start), int(count or "1")
    except ValueError:
        raise argparse.ArgumentTypeError("give FIRST:COUNT, e.g. 10000000:3000") from None
    if first <= 0 or n <= 0:
        raise argparse.ArgumentTypeError("FIRST and COUNT are positive")
    return range(first, first + n)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bot.sandbox.serve",
                                description="Serve the Telegram Bot API emulator.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    p.add_argument("--token", default="123456:TEST-TOKEN")
    p.add_argument("--global-rate", type=float, default=30.0,
                   help="messages per second overall (sliding one-second window; default 30)")
    p.add_argument("--per-chat-interval", type=float, default=1.0,
                   help="seconds per message to one private chat after its burst (default 1)")
    p.add_argument("--per-chat-burst", type=int, default=3,
                   help="messages one private chat may get at once (default 3)")
    p.add_argument("--group-per-minute", type=int, default=20)
    p.add_argument("--no-limits", action="store_true",
                   help="no flood limits at all (benchmark baselines only)")
    p.add_argument("--users", type=_users, action="append", default=[], metavar="FIRST:COUNT",
                   help="owners who started the bot: user ids FIRST..FIRST+COUNT-1")
    p.add_argument("--until-stdin-closes", action="store_true",
                   help="stop when standard input reaches its end")
    return p


class _StdinWatch(asyncio.Protocol):
    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop.set()


async def serve(args: argparse.Namespace) -> None:
    off = args.no_limits
    emu = TelegramEmulator(token=args.token, global_rate=None if off else args.global_rate,
                           per_chat_interval=None if off else args.per_chat_interval,
                           per_chat_burst=args.per_chat_burst,
                           group_per_minute=None if off else args.group_per_minute)
    for users in args.users:
        for user_id in users:
            emu.user(user_id)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.until_stdin_closes:
        await loop.connect_read_pipe(lambda: _StdinWatch(stop), sys.stdin)
    await emu.start(args.host, args.port)
    try:
        print(json.dumps({"api_url": emu.api_url, "token": emu.token,
                          "stats_url": f"{emu.api_url}/_sandbox/bot{emu.token}/stats"}),
              flush=True)
        await stop.wait()
    finally:
        await emu.stop()


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(parser().parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
