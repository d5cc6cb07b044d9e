"""Why a ticket event happened, in the reader's language.

Events keep their reason as a short record written in one fixed form ("no first answer to
the owner by 11-04 12:00", "escalated by 王客服: 车主很着急"), and rows written years ago
must still read well. ``reason_key`` turns such a record into a catalogue key and its
values; the console and the staff group each render it from their own catalogue (keys
``reason.<key>``), and anything not recognised is shown as it was written.
"""

from __future__ import annotations

import re

# (key, pattern): the forms bot.tickets and bot.ticket_rules write, most specific first.
_FORMS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("first_answer", re.compile(r"first answer")),
    ("overdue_first_answer", re.compile(r"no first answer to the owner by (?P<when>.+)")),
    ("overdue_handler", re.compile(r"handler did not resolve by (?P<when>.+)")),
    ("overdue_level", re.compile(r"(?P<level>\w+) level did not act by (?P<when>.+)")),
    ("rated_low", re.compile(
        r"owner rated the handling (?P<score>\d+)/10 \(at or below (?P<threshold>\d+)\)")),
    ("rated", re.compile(r"owner rated the handling (?P<score>\d+)/10")),
    ("ignored", re.compile(r"ignored: ticket is (?P<state>\w+)")),
    ("improvement", re.compile(r"improvement: (?P<text>.*)", re.DOTALL)),
    ("major_by", re.compile(r"marked major by (?P<name>[^:]+?)(?:: (?P<why>.*))?", re.DOTALL)),
    ("escalated_by", re.compile(r"escalated by (?P<name>[^:]+?)(?:: (?P<why>.*))?", re.DOTALL)),
)


_SKIPPED = re.compile(r"(?:(?P<reason>.*); )?no staff at (?P<levels>[\w, ]+), passed over",
                      re.DOTALL)


def split_skipped(reason: str) -> tuple[str, list[str]]:
    """The reason without its note of levels passed over for having nobody, and those
    levels (bot.tickets writes "…; no staff at advisor, supervisor, passed over")."""
    match = _SKIPPED.fullmatch(reason)
    if match is None:
        return reason, []
    return match.group("reason") or "", match.group("levels").split(", ")


def reason_key(reason: str) -> tuple[str, dict[str, str]] | None:
    """The catalogue key (without ``reason.``) and its values, or None for free text."""
    for key, pattern in _FORMS:
        match = pattern.fullmatch(reason)
        if match:
            values = {k: v or "" for k, v in match.groupdict().items()}
            if key in ("major_by", "escalated_by") and values.get("why"):
                key += "_why"
            return key, values
    return None
