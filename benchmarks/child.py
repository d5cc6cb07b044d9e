"""The entry point of a benchmark's child process (``common.in_child``): ``TASK PARAMS-JSON``.

Each task's module is imported only in the child that runs it.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

Task = Callable[[dict[str, Any]], Coroutine[Any, Any, dict[str, Any]]]

# task name -> (module, coroutine function taking the parameters, returning a JSON object)
TASKS: dict[str, tuple[str, str]] = {
    "import": ("benchmarks.importing", "child_import"),
    "scan": ("benchmarks.scan", "child_scan"),
    "mileage": ("benchmarks.mileage", "child_mileage"),
    "webhook_app": ("benchmarks.webhook_child", "child_webhook_app"),
    "webhook_load": ("benchmarks.webhook_child", "child_webhook_load"),
    "crash_direct": ("benchmarks.crash", "child_crash_direct"),
}


def child_main(argv: Sequence[str]) -> int:
    """Run one task; print its JSON report as the last line of stdout."""
    task, params = argv[0], json.loads(argv[1])
    module, name = TASKS[task]
    run: Task = getattr(importlib.import_module(module), name)
    print(json.dumps(asyncio.run(run(params))), flush=True)
    return 0
