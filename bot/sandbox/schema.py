"""The Bot API method schema the emulator validates requests against.

Derived from the machine-readable spec (``api.json``, scraped from Telegram's documentation by
PaulSonOfLars/telegram-bot-api-spec) and packaged as ``botapi_schema.json`` so the emulator
needs no network and no 900 kB file at runtime. Regenerate with::

    python -m bot.sandbox.schema /path/to/api.json
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypedDict

logger = logging.getLogger(__name__)

SCHEMA_FILE = Path(__file__).with_name("botapi_schema.json")


class FieldSpec(TypedDict):
    """One parameter of a method: its allowed Bot API types and whether it must be present."""

    types: list[str]
    required: bool


class Schema(TypedDict):
    """The packaged schema: spec version plus method -> field -> FieldSpec."""

    version: str
    release_date: str
    methods: dict[str, dict[str, FieldSpec]]


def derive_schema(api: dict[str, Any]) -> Schema:
    """Keep only what validation needs (names, types, required) from the full spec."""
    methods: dict[str, dict[str, FieldSpec]] = {}
    for name, method in sorted(api["methods"].items()):
        fields: dict[str, FieldSpec] = {}
        for field in method.get("fields", []):
            fields[field["name"]] = {
                "types": list(field["types"]),
                "required": bool(field["required"]),
            }
        methods[name] = dict(sorted(fields.items()))
    return {
        "version": str(api.get("version", "")),
        "release_date": str(api.get("release_date", "")),
        "methods": methods,
    }


def _compact(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def dump_schema(schema: Schema) -> str:
    """Serialise compactly but with one method per line, so a spec update diffs readably."""
    lines = [
        f"{_compact(name)}:{_compact(fields)}" for name, fields in sorted(schema["methods"].items())
    ]
    head = (
        "{"
        f'"release_date":{json.dumps(schema["release_date"])},'
        f'"version":{json.dumps(schema["version"])},'
        '"methods":{\n'
    )
    return head + ",\n".join(lines) + "\n}}\n"


def write_schema(api_json: Path, out: Path = SCHEMA_FILE) -> Schema:
    """Read the full spec at ``api_json`` and write the compact schema to ``out``."""
    api = json.loads(api_json.read_text(encoding="utf-8"))
    schema = derive_schema(api)
    out.write_text(dump_schema(schema), encoding="utf-8")
    logger.info("wrote %d methods (%s) to %s", len(schema["methods"]), schema["version"], out)
    return schema


@lru_cache(maxsize=1)
def load_schema() -> Schema:
    """Load the packaged schema (cached: it never changes while the process runs)."""
    data: Schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return data


@lru_cache(maxsize=1)
def method_names() -> dict[str, str]:
    """Lower-case name -> canonical name: Telegram matches method names case-insensitively."""
    return {name.lower(): name for name in load_schema()["methods"]}


def canonical_method(name: str) -> str | None:
    """The schema's spelling of ``name`` (any case), or None when Telegram has no such method."""
    return method_names().get(name.lower())


@dataclass(frozen=True)
class UploadedFile:
    """A file posted as a multipart part (what the Bot API calls InputFile)."""

    filename: str | None
    content_type: str | None
    data: bytes


class ValidationError(Exception):
    """A request Telegram would refuse with 400; ``description`` is Telegram's wording."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


_INT_RE = re.compile(r"-?[0-9]+")


def coerce_params(method: str, raw: Mapping[str, object]) -> dict[str, Any]:
    """Turn transport values into typed ones, the way Telegram reads them.

    Form and query values are all strings: clients such as PTB send strings raw and JSON-encode
    everything else (numbers, booleans, reply_markup). So a field that accepts String keeps
    its string (except that a numeric chat_id-style Integer-or-String becomes an int); any
    other field is JSON-decoded. A JSON body is already typed, but JSON-encoded strings
    inside it are decoded the same way, as Telegram does. Undecodable values are left as
    they are so validation can name the field.
    """
    fields = load_schema()["methods"].get(method, {})
    params: dict[str, Any] = {}
    for key, value in raw.items():
        spec = fields.get(key)
        if spec is not None:
            value = _coerce(value, spec["types"])
        params[key] = value
    return params


def _coerce(value: object, types: list[str]) -> object:
    if isinstance(value, str):
        if "String" in types:
            if "Integer" in types and _INT_RE.fullmatch(value):
                return int(value)
            return value
        if "Boolean" in types and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        try:
            return json.loads(value)
        except ValueError:
            return value
    only_string = "String" in types and "Integer" not in types and "Float" not in types
    if only_string and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def type_matches(type_name: str, value: object) -> bool:
    """Whether ``value`` is acceptable for one Bot API type name from the schema."""
    if type_name.startswith("Array of "):
        inner = type_name[len("Array of ") :]
        return isinstance(value, list) and all(type_matches(inner, item) for item in value)
    if type_name == "Integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "Float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if type_name == "String":
        return isinstance(value, str)
    if type_name == "Boolean":
        return isinstance(value, bool)
    if type_name == "InputFile":
        return isinstance(value, UploadedFile)
    # Every other name is an object type (InlineKeyboardMarkup, BotCommandScope, ...).
    return isinstance(value, dict)


def validate_params(method: str, params: Mapping[str, object]) -> None:
    """Raise ValidationError as Telegram would for missing or wrongly typed parameters.

    Parameters the schema does not know are ignored, as Telegram ignores them.
    """
    fields = load_schema()["methods"][method]
    for name, spec in fields.items():
        if spec["required"] and params.get(name) is None:
            raise ValidationError(f"Bad Request: {name} is required")
    for name, value in params.items():
        types = fields[name]["types"] if name in fields else None
        if types is None or value is None:
            continue
        if not any(type_matches(t, value) for t in types):
            raise ValidationError(
                f'Bad Request: field "{name}" must be of type {" or ".join(types)}'
            )


def main(argv: list[str] | None = None) -> int:
    """Command line entry: ``python -m bot.sandbox.schema API_JSON [OUT]``."""
    args = sys.argv[1:] if argv is None else argv
    if not args or len(args) > 2:
        print("usage: python -m bot.sandbox.schema /path/to/api.json [out.json]", file=sys.stderr)
        return 2
    out = Path(args[1]) if len(args) == 2 else SCHEMA_FILE
    schema = write_schema(Path(args[0]), out)
    print(f"{out}: {len(schema['methods'])} methods, {schema['version']}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    raise SystemExit(main())
