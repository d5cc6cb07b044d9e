"""Text the owner sees, by key, from the dealership's scripts (话术).

Messages are Jinja2 templates (``bot/scripts/<lang>/<key>.html``) rendered in a *sandboxed*
environment with HTML autoescape, because Telegram parses them as HTML and a name or plate
from an import must never become markup. Short labels (buttons, one-line replies) live in
``bot/scripts/<lang>/*.toml`` (one file per feature; keys must not repeat across files). A dealership overrides any file from its own folder
(``CAREBOT_SCRIPTS_DIR``); a language without a file falls back to zh_CN.
"""

from __future__ import annotations

import logging
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment

log = logging.getLogger(__name__)

PACKAGED = Path(__file__).parent / "scripts"
DEFAULT_LANGUAGE = "zh_CN"
LANGUAGES = ("zh_CN", "en")


class Scripts:
    """Renders message templates and labels in the owner's language."""

    def __init__(self, override_dir: Path | None = None) -> None:
        self._dirs = [d for d in (override_dir, PACKAGED) if d is not None]
        self._envs: dict[str, SandboxedEnvironment] = {}
        self._label_cache: dict[str, dict[str, str]] = {}

    @property
    def override_dir(self) -> Path | None:
        """The dealership's own folder (``CAREBOT_SCRIPTS_DIR``), if any."""
        return self._dirs[0] if len(self._dirs) > 1 else None

    def reload(self) -> None:
        """Forget what was loaded, so an edited or removed file counts at once."""
        self._envs.clear()
        self._label_cache.clear()
        _read_labels.cache_clear()

    def template_keys(self) -> list[str]:
        """Every template key, in any language and folder."""
        found = {p.stem for d in self._dirs for lang in LANGUAGES
                 for p in (d / lang).glob("*.html")}
        return sorted(found)

    def source(self, key: str, lang: str) -> tuple[str, str] | None:
        """The template text used for ``key`` in ``lang`` itself (no fallback), and where it
        comes from: "override" (the dealership's folder) or "builtin"; None if neither has it."""
        for d in self._dirs:
            path = d / lang / f"{key}.html"
            if path.is_file():
                origin = "builtin" if d == PACKAGED else "override"
                return path.read_text(encoding="utf-8"), origin
        return None

    def _env(self, lang: str) -> SandboxedEnvironment:
        env = self._envs.get(lang)
        if env is None:
            loaders = [FileSystemLoader(str(d / lang)) for d in self._dirs]
            env = SandboxedEnvironment(
                loader=ChoiceLoader(loaders),
                autoescape=True,
                undefined=StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
                keep_trailing_newline=False,
            )
            self._envs[lang] = env
        return env

    def render(self, key: str, lang: str, **context: Any) -> str:
        """Render message ``key`` for ``lang`` (falling back to zh_CN)."""
        for candidate in _languages(lang):
            try:
                template = self._env(candidate).get_template(f"{key}.html")
            except TemplateNotFound:
                continue
            return template.render(**context).strip()
        raise KeyError(f"no script {key!r} in {lang} or {DEFAULT_LANGUAGE}")

    def label(self, key: str, lang: str, **fmt: Any) -> str:
        """A short text by key (button label, one-line reply), formatted with ``fmt``."""
        for candidate in _languages(lang):
            value = self._labels(candidate).get(key)
            if value is not None:
                return value.format(**fmt) if fmt else value
        raise KeyError(f"no label {key!r} in {lang} or {DEFAULT_LANGUAGE}")

    def _labels(self, lang: str) -> dict[str, str]:
        cached = self._label_cache.get(lang)
        if cached is not None:
            return cached
        merged: dict[str, str] = {}
        for d in reversed(self._dirs):  # packaged first, overrides on top
            folder = d / lang
            if folder.is_dir():
                for path in sorted(folder.glob("*.toml")):
                    merged.update(_read_labels(path))
        self._label_cache[lang] = merged
        return merged


def _languages(lang: str) -> list[str]:
    return [lang] if lang == DEFAULT_LANGUAGE else [lang, DEFAULT_LANGUAGE]


@lru_cache(maxsize=32)
def _read_labels(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return {str(k): str(v) for k, v in data.items()}


def normalize_language(value: str | None) -> str:
    """Map what imports and Telegram say (zh-hans, en-US, 中文) to a language we serve."""
    v = (value or "").strip().lower().replace("-", "_")
    if v.startswith("en") or v == "english" or v == "英文":
        return "en"
    return DEFAULT_LANGUAGE
