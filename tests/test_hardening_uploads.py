"""Uploads within limits (issue 15, point 3): a crafted workbook is refused with a clear
message and without taking the server's memory; CSV rows and columns are capped too.

Memory is measured in a child process (its own peak resident size, /proc/self/status), so
the test suite's own allocations do not blur it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest

from bot.intake import IntakeError
from bot.intake import files as intake
from bot.intake.files import file_records as _file_records

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
    'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>')
RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>')
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')


def crafted_xlsx(path: Path, rows: int = 3000, dimension: str | None = "A1:XFD{rows}",
                 extra: dict[str, bytes] | None = None) -> Path:
    """The issue's workbook: every row holds one cell, in the last column (XFD)."""
    cells = "".join(f'<row r="{i}"><c r="XFD{i}"><v>{i}</v></c></row>'
                    for i in range(1, rows + 1))
    dim = f'<dimension ref="{dimension.format(rows=rows)}"/>' if dimension else ""
    sheet = ('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.'
             f'openxmlformats.org/spreadsheetml/2006/main">{dim}<sheetData>{cells}'
             '</sheetData></worksheet>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES)
        z.writestr("_rels/.rels", RELS)
        z.writestr("xl/workbook.xml", WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        z.writestr("xl/worksheets/sheet1.xml", sheet)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


CHILD = r"""
import asyncio, json, sys
from datetime import UTC, datetime
from pathlib import Path

from bot.journeys.plans import journey_rules
from bot.config import Settings
from bot.intake import IntakeError, import_deliveries_file
import openpyxl  # noqa: F401  (loaded before the baseline)

def status_kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

rules = journey_rules(Settings(_env_file=None))
out = []
for name in sys.argv[1:]:
    baseline = status_kb("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # the peak (VmHWM) starts again from here
    except OSError:
        pass
    try:
        asyncio.run(import_deliveries_file(Path(name), rules=rules, now=datetime.now(UTC)))
        refusal = None
    except IntakeError as exc:
        refusal = str(exc)
    out.append({"growth_mb": (status_kb("VmHWM") - baseline) / 1024, "refusal": refusal})
print(json.dumps(out))
"""


def refusals_and_growth(*paths: Path) -> list[dict[str, object]]:
    done = subprocess.run([sys.executable, "-c", CHILD, *map(str, paths)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return list(json.loads(done.stdout.splitlines()[-1]))


def test_the_crafted_workbook_is_refused_without_taking_memory(tmp_path: Path) -> None:
    crafted = crafted_xlsx(tmp_path / "crafted.xlsx")
    assert crafted.stat().st_size < 40 * 1024  # the file was 17 KB
    undeclared = crafted_xlsx(tmp_path / "undeclared.xlsx", dimension=None)
    lying = crafted_xlsx(tmp_path / "lying.xlsx", dimension="A1")
    strings = crafted_xlsx(tmp_path / "strings.xlsx", rows=10, extra={
        "xl/sharedStrings.xml": b"<sst>" + b"<si><t>a</t></si>" * (2 * MB) + b"</sst>"})
    assert strings.stat().st_size < MB  # 34 MB of shared strings, packed
    results = refusals_and_growth(crafted, undeclared, lying, strings)
    for path, result in zip((crafted, undeclared, lying, strings), results, strict=True):
        assert result["refusal"], (path.name, result)
        assert float(result["growth_mb"]) < 50, (path.name, result)  # type: ignore[arg-type]
    assert "16,384 columns wide" in str(results[0]["refusal"])
    assert "at most 200" in str(results[0]["refusal"])
    assert "is empty (carebot reads the first 200 columns)" in str(results[1]["refusal"])
    assert "sharedStrings.xml unpacks to 34 MB (at most 24 MB)" in str(results[3]["refusal"])


def test_a_workbook_that_unpacks_too_big_is_refused_before_unpacking(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = crafted_xlsx(tmp_path / "big.xlsx", rows=10)
    monkeypatch.setattr(intake, "XLSX_MAX_UNPACKED", 1000)
    with pytest.raises(IntakeError, match="unpacks to 0 MB; carebot reads workbooks up to"):
        _file_records(path)


def test_an_ordinary_workbook_still_imports(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["交车明细 2026-11"])
    sheet.append(["车架号", "车主姓名", "手机", "交车时间"])
    sheet.append(["LSVAU2180N2183294", "张伟", "13800138000", "2026-11-03 09:00"])
    sheet.cell(row=2, column=MAX_COLUMNS_USED, value="备注")
    book.save(tmp_path / "ok.xlsx")
    records, warnings = _file_records(tmp_path / "ok.xlsx")
    assert [number for number, _ in records] == [3]
    assert records[0][1]["phone"] == "13800138000"
    assert warnings and "备注" in warnings[0].message


MAX_COLUMNS_USED = 200  # a note in the last column carebot reads


def test_csv_rows_and_columns_are_capped(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    wide = tmp_path / "wide.csv"
    wide.write_text("vin,owner_name,phone,delivered_at\n" + "x," * 300 + "x\n")
    with pytest.raises(IntakeError, match="row 2: 301 columns; carebot reads at most 200"):
        _file_records(wide)
    padded = tmp_path / "padded.csv"  # trailing empty cells are not columns
    padded.write_text("vin,owner_name,phone,delivered_at" + "," * 500 + "\n"
                      "LSVAU2180N2183294,张伟,13800138000,2026-11-03\n")
    assert len(_file_records(padded)[0]) == 1
    monkeypatch.setattr(intake, "MAX_ROWS", 3)
    many = tmp_path / "many.csv"
    many.write_text("vin,owner_name,phone,delivered_at\n"
                    + "LSVAU2180N2183294,张伟,13800138000,2026-11-03\n" * 4)
    with pytest.raises(IntakeError, match="more than 3 rows with data; split it"):
        _file_records(many)
