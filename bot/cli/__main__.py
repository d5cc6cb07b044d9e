"""``python -m bot.cli``: the same as ``carebot`` (the process-level tests start it so)."""

from bot.cli.core import main

raise SystemExit(main())
