"""Imports: upload a CSV/XLSX of deliveries or visits, see the result row by row.

The same import as ``carebot import`` and the intake API (``bot.intake``): the same
validation, the same journeys; a broken row never stops the good ones. Each import is kept
in the audit log (who, when, file, counts, the errors) so the page lists recent imports and
their error rows can be downloaded as CSV to fix and upload again (a re-import is
idempotent).
"""

from __future__ import annotations

import csv
import io
import logging
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from bot import intake_messages
from bot.intake import ImportResult, IntakeError, import_deliveries_file, import_visits_file
from bot.web.console import access, console_of, render, requires, staff_of
from bot.web.console.render import Translator, csv_cell
from db.models import AuditLog

log = logging.getLogger(__name__)

IMPORTERS = {"deliveries": import_deliveries_file, "visits": import_visits_file}
SUFFIXES = (".csv", ".xlsx", ".txt")
MAX_UPLOAD = 20 * 1024 * 1024
KEEP_ERRORS = 5_000  # error rows kept with the audit entry, for the CSV download
HISTORY = 20


async def _history() -> list[AuditLog]:
    return await AuditLog.filter(action__in=[f"import.{k}" for k in IMPORTERS]) \
        .order_by("-created_at", "-id").limit(HISTORY).prefetch_related("staff")


def _translator(request: web.Request) -> Translator:
    return Translator(console_of(request).strings, staff_of(request).language)


def shown_problems(items: list[dict[str, Any]], t: Translator) -> list[dict[str, Any]]:
    """Stored problems (errors or warnings) with their column and words in the reader's
    language; a problem the catalogue does not know is shown as the intake wrote it."""
    return [{"row": item.get("row"),
             "field": t.get(f"imports.fields.{item.get('field')}", str(item.get("field", ""))),
             "message": problem_text(str(item.get("message", "")), t)} for item in items]


def problem_text(message: str, t: Translator) -> str:
    known = intake_messages.message_key(message)
    if known is None:
        return message
    key, values = known
    if "type" in values:
        values["type"] = t.get(f"imports.types.{values['type']}", values["type"])
    return t(f"imports.problem.{key}", **values)


async def _page(request: web.Request, status: int = 200, **context: Any) -> web.Response:
    stored = context.get("stored")
    if stored:
        t = _translator(request)
        context["stored"] = {**stored,
                             "errors": shown_problems(stored.get("errors", []), t),
                             "warnings": shown_problems(stored.get("warnings", []), t)}
    context.setdefault("error_key", "")
    context.setdefault("error_detail", "")
    context.setdefault("stored", None)
    context.setdefault("entry", None)
    context.setdefault("file_name", "")
    context.setdefault("what", "deliveries")
    return await render(request, "imports.html", status=status, history=await _history(),
                        kinds=list(IMPORTERS), max_mb=MAX_UPLOAD // (1024 * 1024), **context)


@requires(access.IMPORTS)
async def imports_page(request: web.Request) -> web.Response:
    return await _page(request)


@requires(access.IMPORTS)
async def upload(request: web.Request) -> web.Response:
    form = await request.post()
    what = str(form.get("what", ""))
    upload = form.get("file")
    if what not in IMPORTERS:
        return await _page(request, 422, error_key="imports.bad_kind")
    if not isinstance(upload, web.FileField) or not upload.filename:
        return await _page(request, 422, error_key="imports.no_file", what=what)
    name = Path(unquote(upload.filename)).name  # some clients percent-encode non-ASCII
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        return await _page(request, 422, error_key="imports.bad_type", what=what)
    data = upload.file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        return await _page(request, 413, error_key="imports.too_big", what=what)
    services = console_of(request).services
    now = services.clock.now()
    with tempfile.TemporaryDirectory(prefix="carebot-upload-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            result = await IMPORTERS[what](path, rules=services.rules.journeys, now=now)
        except IntakeError as exc:
            detail = str(exc).replace(f"upload{suffix}", name)
            return await _page(request, 422, error_key="imports.unusable", error_detail=detail,
                               what=what)
    staff = staff_of(request)
    entry = await AuditLog.create(
        staff_id=staff.id, action=f"import.{what}", target=f"file:{name[:55]}",
        detail=_detail(name, result), created_at=now)
    log.info("%s imported %s from %s: %s", staff.login, what, name,
             result.summary(limit=0).splitlines()[0])
    return await _page(request, 422 if result.errors else 200, stored=entry.detail,
                       entry=entry, what=what, file_name=name)


def _detail(name: str, result: ImportResult) -> dict[str, Any]:
    counts = result.to_dict()
    counts["errors"] = [e.to_dict() for e in result.errors[:KEEP_ERRORS]]
    counts["warnings"] = [w.to_dict() for w in result.warnings[:KEEP_ERRORS]]
    counts["error_count"] = len(result.errors)
    counts["file"] = name
    return counts


@requires(access.IMPORTS)
async def errors_csv(request: web.Request) -> web.StreamResponse:
    entry = await AuditLog.get_or_none(id=int(request.match_info["id"]),
                                       action__startswith="import.")
    if entry is None:
        raise web.HTTPNotFound(text="no such import")
    out = io.StringIO()
    writer = csv.writer(out)
    t = _translator(request)
    writer.writerow([t("imports.row"), t("imports.field"), t("imports.message")])
    for item in shown_problems(entry.detail.get("errors", []), t):
        writer.writerow([item["row"], csv_cell(item["field"]), csv_cell(item["message"])])
    stem = Path(str(entry.detail.get("file", "import"))).stem
    return web.Response(
        body=("\ufeff" + out.getvalue()).encode("utf-8"), content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_ascii(stem)}-errors.csv"'})


def _ascii(text: str) -> str:
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in text)
    return cleaned.strip("_") or "import"


@requires(access.IMPORTS)
async def import_entry(request: web.Request) -> web.Response:
    entry = await AuditLog.get_or_none(id=int(request.match_info["id"]),
                                       action__startswith="import.")
    if entry is None:
        raise web.HTTPNotFound(text="no such import")
    return await _page(request, entry=entry, stored=entry.detail,
                       what=entry.action.split(".", 1)[1],
                       file_name=entry.detail.get("file", ""))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/imports", imports_page)
    router.add_post("/imports", upload)
    router.add_get("/imports/{id:\\d{1,9}}", import_entry)
    router.add_get("/imports/{id:\\d{1,9}}/errors.csv", errors_csv)
