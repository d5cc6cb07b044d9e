"""Reading CSV/XLSX files into canonical records, within what one file may hold."""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import logging
import zipfile
from collections.abc import Generator, Iterable, Sequence
from pathlib import Path
from typing import Any

from bot.intake.columns import DELIVERIES, Spec, column_field, is_blank
from bot.intake.results import IntakeError, RowError

log = logging.getLogger(__name__)


HEADER_SEARCH_ROWS = 10
# What one file may hold (issue 15): a crafted workbook must not take the server's memory.
# A workbook's parts are checked by the sizes its zip declares, before anything is unpacked
# (a zip member never unpacks to more than it declares: Python's reader stops there).
MAX_ROWS = 200_000  # rows with data (an import of 100,000 deliveries is the large case)
MAX_COLUMNS = 200  # columns read; a sheet declaring more is refused
XLSX_MAX_UNPACKED = 256 * 1024 * 1024  # all parts together
XLSX_MAX_PART = 24 * 1024 * 1024  # a part read whole (shared strings, styles), not streamed
XLSX_MAX_PARTS = 2_000
_MB = 1024 * 1024
_TEXT_SUFFIXES = {".csv", ".txt", ".tsv"}
_XLSX_SUFFIXES = {".xlsx", ".xlsm"}


# --- reading files ----------------------------------------------------------------------


def _decode(data: bytes, path: Path) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM (Excel "Unicode text"), else GB18030."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise IntakeError(f"{path.name}: not valid UTF-16 text ({exc.reason})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        raise IntakeError(
            f"{path.name}: the text is neither UTF-8 nor GB18030; save it as 'CSV UTF-8'"
        ) from None
    log.info("%s: not UTF-8, read as GB18030", path.name)
    return text


def _read_text_table(path: Path) -> Generator[tuple[int, Sequence[Any]], None, None]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IntakeError(f"cannot read {path}: {exc.strerror or exc}") from None
    if data.startswith(b"PK\x03\x04"):
        raise IntakeError(f"{path.name} is an Excel workbook, not text; name it .xlsx")
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise IntakeError(f"{path.name} is an old Excel (.xls) file; save it as .xlsx or CSV")
    text = _decode(data, path)
    del data
    first_line = next((line for line in io.StringIO(text) if line.strip()), "")
    delimiter = max(",\t;", key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for number, cells in enumerate(reader, start=1):
            while cells and not cells[-1].strip():
                cells.pop()
            if len(cells) > MAX_COLUMNS:
                raise IntakeError(f"{path.name}, row {number}: {len(cells)} columns; carebot "
                                  f"reads at most {MAX_COLUMNS}: remove the columns it does "
                                  "not use")
            yield number, cells
    except csv.Error as exc:
        raise IntakeError(f"{path.name}, row {reader.line_num}: {exc}") from None


def _check_workbook_size(path: Path) -> None:
    """Refuse a workbook whose parts would unpack too big, from the sizes its zip declares,
    before anything is unpacked; the message says what to do instead."""
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise IntakeError(f"cannot open {path.name} as an Excel workbook: {exc}") from None
    advice = "export only the columns and rows to import, or save the sheet as CSV"
    if len(parts) > XLSX_MAX_PARTS:
        raise IntakeError(f"{path.name} holds {len(parts):,} parts (at most "
                          f"{XLSX_MAX_PARTS:,}); {advice}")
    total = sum(part.file_size for part in parts)
    if total > XLSX_MAX_UNPACKED:
        raise IntakeError(f"{path.name} unpacks to {total // _MB:,} MB; carebot reads "
                          f"workbooks up to {XLSX_MAX_UNPACKED // _MB} MB unpacked; {advice}")
    for part in parts:
        if not part.filename.startswith("xl/worksheets/") and part.file_size > XLSX_MAX_PART:
            raise IntakeError(f"{path.name}: its part {part.filename[:60]} unpacks to "
                              f"{part.file_size // _MB:,} MB (at most "
                              f"{XLSX_MAX_PART // _MB} MB); {advice}")


def _read_xlsx_table(path: Path, spec: Spec = DELIVERIES
                     ) -> Generator[tuple[int, Sequence[Any]], None, None]:
    """A workbook's rows, streamed, at most ``MAX_COLUMNS`` cells each: the first sheet with
    our header in its first rows (e.g. after a cover sheet), else the last one."""
    # Imported here: openpyxl would add ~70 ms to every start; only spreadsheets need it.
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    _check_workbook_size(path)
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise IntakeError(f"cannot open {path.name} as an Excel workbook: {exc}") from None
    try:
        sheets = workbook.worksheets
        for index, sheet in enumerate(sheets):
            width = sheet.max_column  # as declared; None when the sheet does not say
            if isinstance(width, int) and width > MAX_COLUMNS:
                raise IntakeError(
                    f"{path.name}: sheet {sheet.title!r} is {width:,} columns wide; carebot "
                    f"reads at most {MAX_COLUMNS}: delete the empty or unused columns (or "
                    "save the sheet as CSV)")
            sheet.reset_dimensions()  # type: ignore[union-attr,unused-ignore]  # some exporters write wrong ones
            rows = enumerate(sheet.iter_rows(min_row=1, max_col=MAX_COLUMNS, values_only=True),
                             start=1)
            head = list(itertools.islice(rows, HEADER_SEARCH_ROWS))
            if index + 1 < len(sheets) and _find_header(head, spec) is None:
                continue  # e.g. a cover sheet: take the first sheet with our columns
            yield from head
            yield from rows
            return
    finally:
        workbook.close()


def _find_header(
    rows: Sequence[tuple[int, Sequence[Any]]], spec: Spec = DELIVERIES
) -> tuple[int, Sequence[Any]] | None:
    """The header row: the first of the first few rows naming two or more of our columns
    (DMS exports often put a title line above it)."""
    for number, cells in rows[:HEADER_SEARCH_ROWS]:
        if len({f[0] for c in cells if (f := column_field(c, spec)) is not None}) >= 2:
            return number, cells
    return None


def _excel_serial(value: Any) -> Any:
    """A number in a date column of a workbook is a date serial whose cell lost its date
    format; an eight-digit number is a date typed as 20261103 and is left for the parser."""
    from openpyxl.utils.datetime import from_excel  # only spreadsheets: see _read_xlsx_table

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 10_000_000 <= value <= 99_999_999 and float(value).is_integer():
            return value
        if 1 <= value < 2958466:
            return from_excel(value)
    return value


def file_records(
    path: Path, spec: Spec = DELIVERIES
) -> tuple[list[tuple[int, dict[str, Any]]], list[RowError]]:
    """Read a CSV/XLSX file into (row number, canonical record) pairs; skips empty rows.

    Rows are streamed: only the records kept (at most ``MAX_ROWS``) are held in memory."""
    suffix = path.suffix.lower()
    if suffix in _XLSX_SUFFIXES:
        rows = _read_xlsx_table(path, spec)
    elif suffix in _TEXT_SUFFIXES:
        rows = _read_text_table(path)
    elif suffix == ".xls":
        raise IntakeError(f"{path.name} is an old Excel (.xls) file; save it as .xlsx or CSV")
    else:
        raise IntakeError(f"{path.name}: unknown file type {suffix or '(none)'}; use .csv or .xlsx")
    with contextlib.closing(rows):
        head = list(itertools.islice(rows, HEADER_SEARCH_ROWS))
        header = _find_header(head, spec)
        if header is None:
            raise _no_header(path, spec, itertools.chain(head, rows))
        columns, warnings = _header_columns(path, spec, *header)
        records = _records(path, spec, itertools.chain(head, rows), header[0], columns,
                           excel=suffix in _XLSX_SUFFIXES)
    return records, warnings


def _no_header(path: Path, spec: Spec, rows: Iterable[tuple[int, Sequence[Any]]]
               ) -> IntakeError:
    first = next((cells for _, cells in rows if any(not is_blank(c) for c in cells)), None)
    if first is None:
        wide = f" (carebot reads the first {MAX_COLUMNS} columns)" \
            if path.suffix.lower() in _XLSX_SUFFIXES else ""
        return IntakeError(f"{path.name} is empty{wide}")
    return IntakeError(
        f"{path.name}: no header row found in the first {HEADER_SEARCH_ROWS} rows; "
        "expected column names such as "
        + ", ".join(f"{n}/{spec.columns[n][1]}" for n in spec.required)
        + f"; first row is: {_show_headers(first)}"
    )


def _header_columns(path: Path, spec: Spec, header_row: int, header_cells: Sequence[Any]
                    ) -> tuple[dict[str, list[int]], list[RowError]]:
    """Each field's column indexes, in order of preference; warnings for unused columns."""
    columns: dict[str, list[tuple[int, int]]] = {}
    ignored: list[str] = []
    for index, cell in enumerate(header_cells):
        found = column_field(cell, spec)
        if found is None:
            if not is_blank(cell):
                ignored.append(str(cell).strip())
            continue
        columns.setdefault(found[0], []).append((found[1], index))
    missing = [name for name in spec.required if name not in columns]
    if missing:
        wanted = "; ".join(f"{name} (or {', '.join(spec.columns[name][1:4])})" for name in missing)
        raise IntakeError(
            f"{path.name}: missing required column{'s' if len(missing) > 1 else ''}: {wanted}. "
            f"Headers found in row {header_row}: {_show_headers(header_cells)}"
        )
    warnings: list[RowError] = []
    if ignored:
        warnings.append(
            RowError(header_row, "header", f"columns not used by carebot: {', '.join(ignored)}")
        )
    return {name: [index for _, index in sorted(cols)] for name, cols in columns.items()}, \
        warnings


def _records(path: Path, spec: Spec, rows: Iterable[tuple[int, Sequence[Any]]],
             header_row: int, order: dict[str, list[int]], *, excel: bool
             ) -> list[tuple[int, dict[str, Any]]]:
    records: list[tuple[int, dict[str, Any]]] = []
    for number, cells in rows:
        if number <= header_row:
            continue
        record: dict[str, Any] = {}
        for name, indexes in order.items():
            value = None
            for index in indexes:
                if index < len(cells) and not is_blank(cells[index]):
                    value = cells[index]
                    break
            if value is not None:
                if excel and name in spec.date_fields:
                    value = _excel_serial(value)
                record[name] = value
        if record:
            if len(records) >= MAX_ROWS:
                raise IntakeError(f"{path.name} has more than {MAX_ROWS:,} rows with data; "
                                  f"split it into files of at most {MAX_ROWS:,} rows")
            records.append((number, record))
    return records


def _show_headers(cells: Sequence[Any]) -> str:
    return ", ".join(repr(str(c).strip()) for c in cells if not is_blank(c)) or "(none)"
