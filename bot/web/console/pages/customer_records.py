"""An owner file's consent records and change history in the reader's language (issue 18,
point 1): the records keep their fixed English forms (the consent wording is evidence, the
audit detail a field's code name); the page maps them to catalogue keys. Free text (a basis
typed by staff, the bot's question as the owner read it) is shown as written."""

from __future__ import annotations

import re
from typing import Any

from bot.consent import IMPORT_WORDING
from bot.web.console.render import Translator

# what ConsentRecord.source holds, but console:<login>
SOURCES = {"import": "import", "bot:question": "question", "bot:unsubscribe": "unsubscribe",
           "bot:text": "text", "bot:/stop": "stop"}
FIXED_WORDINGS = {IMPORT_WORDING: "import", "/stop: marketing only": "stop_marketing",
                  "/stop: every follow-up": "stop_followups"}
CONSOLE_WORDING = re.compile(r"(granted|withdrawn) by (.*?) in the console: (.*)", re.DOTALL)


def consent_source(source: str, t: Translator) -> str:
    if source.startswith("console:"):
        return t("customers.source.console", login=source.removeprefix("console:"))
    key = SOURCES.get(source)
    return t(f"customers.source.{key}") if key else source


def consent_wording(wording: str, t: Translator) -> str:
    fixed = FIXED_WORDINGS.get(wording)
    if fixed:
        return t(f"customers.wording.{fixed}")
    said = CONSOLE_WORDING.fullmatch(wording)
    if said:
        return t(f"customers.wording.console_{said[1]}", name=said[2], basis=said[3])
    return wording


def audit_detail(detail: dict[str, Any], t: Translator) -> str:
    """``手机号：+86138… → +86137…；依据：…`` from an audit entry's detail."""
    parts = []
    for key, value in detail.items():
        name = t.get(f"customers.field.{key}", key)
        if isinstance(value, list | tuple) and len(value) == 2:
            parts.append(t("customers.field.changed", field=name, before=_value(value[0], t),
                           after=_value(value[1], t)))
        else:
            parts.append(t("customers.field.said", field=name, value=_value(value, t)))
    return t("customers.field.separator").join(parts)


def _value(value: Any, t: Translator) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return t("customers.field.yes" if value else "customers.field.no")
    if value in ("zh_CN", "en"):
        return t.get(f"customers.field.language_{value}", str(value))
    return str(value)
