"""The ``carebot`` command (``carebot = "bot.cli:main"``): ``core`` parses and runs it, with
the core commands; each feature's subcommands are a module here (campaigns, inbox, report,
tickets, touchpoints). Nothing outside this package imports it but the entry point."""

from bot.cli.core import build_parser, main

__all__ = ["build_parser", "main"]
