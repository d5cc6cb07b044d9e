"""Pages from Jinja2 templates, in the staff member's language.

Interface strings live in ``i18n/<lang>/*.toml`` (one file per page, flat ``key = "text"``);
a missing key falls back to Chinese, then to the key itself, so a gap shows up on screen
instead of crashing the page.
"""

from __future__ import annotations

import re
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

HERE = Path(__file__).parent
LANGUAGES = ("zh_CN", "en")
FALLBACK = "zh_CN"


def load_strings(folder: Path = HERE / "i18n") -> dict[str, dict[str, str]]:
    strings: dict[str, dict[str, str]] = {}
    for lang in LANGUAGES:
        table: dict[str, str] = {}
        for path in sorted((folder / lang).glob("*.toml")):
            with path.open("rb") as fh:
                for key, value in _flatten(tomllib.load(fh)):
                    table[key] = value
        strings[lang] = table
    return strings


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            out.extend(_flatten(value, f"{prefix}{key}."))
        else:
            out.append((f"{prefix}{key}", str(value)))
    return out


class Translator:
    """``t("nav.today")`` in the chosen language; ``t("x", n=3)`` formats ``{n}``."""

    def __init__(self, strings: dict[str, dict[str, str]], lang: str) -> None:
        self.lang = lang if lang in strings else FALLBACK
        self._own = strings.get(self.lang, {})
        self._fallback = strings.get(FALLBACK, {})

    def get(self, key: str, default: str) -> str:
        """The text for ``key`` if there is one, else ``default`` (a code shown as is)."""
        return self._own.get(key) or self._fallback.get(key) or default

    def __call__(self, key: str, **fmt: Any) -> str:
        text = self._own.get(key) or self._fallback.get(key) or key
        return text.format(**fmt) if fmt else text


def make_environment(folder: Path = HERE / "templates") -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=jinja2.select_autoescape(["html", "svg", "xml"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = _local
    env.filters["pct"] = _pct
    env.filters["num"] = _num
    return env


def _local(value: datetime | None, tz: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return value.astimezone(tz).strftime(fmt) if value else "–"


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}" if digits else f"{int(value):,}"


def html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


_FORMULA_START = ("=", "@", "\t", "\r")
_NUMBERISH = re.compile(r"[+-][\d\s().*-]*")  # +8613800138000, +86138****0003, -3


def csv_cell(value: Any) -> Any:
    """A value for a CSV that staff open in Excel: text that Excel would run as a formula
    (``=HYPERLINK(…)`` typed into an owner's name) is prefixed with an apostrophe; a phone
    number or a negative number stays as it is."""
    if isinstance(value, str) and (value.startswith(_FORMULA_START) or (
            value.startswith(("+", "-")) and not _NUMBERISH.fullmatch(value))):
        return "'" + value
    return value
