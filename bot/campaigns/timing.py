"""Moved to :mod:`bot.journeys.timing` (the calendar rules are the touchpoint engine's).

Kept only for ``bot/web/console/pages/customers.py``, which is being edited elsewhere;
remove once it imports ``bot.journeys.timing``.
"""

from bot.journeys.timing import birthday_key

__all__ = ["birthday_key"]
