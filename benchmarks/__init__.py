"""`carebot bench`: performance figures measured side by side with a naive baseline.

Each benchmark runs against real parts on this machine (SQLite in a temporary folder, the
Telegram emulator over loopback HTTP) and reports its figure beside the target and the
baseline's figure from the same run, then writes ``docs/benchmarks.md``. When a PostgreSQL
server answers (``CAREBOT_BENCH_POSTGRES_URL``, ``--postgres``) every benchmark runs again
there, each in a database of its own created from a migrated template and dropped after it;
those figures are reported beside, the targets being judged on SQLite.

One module per benchmark (``dispatch``, ``importing``, ``scan``, ``kpi``, ``campaign``,
``webhook``, ``rush``, ``crash``), what they share in ``common``, the report in ``report``
and the command in ``cli``. The suite lives beside the ``bot`` package, not in it: it is
not part of the installed wheel, and ``carebot bench`` finds it in a source checkout
(``bot.cli``'s one lazy hook). ``--scale`` multiplies every size, so the test suite runs
them all in seconds.
"""
