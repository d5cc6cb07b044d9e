"""Console imports: upload CSV/XLSX of deliveries, row-by-row result, history, error CSV."""

from __future__ import annotations

import io
from pathlib import Path

import aiohttp
import openpyxl
import pytest

from db.models import AuditLog, Customer, Touchpoint, Vehicle
from tests.browser.conftest import add_staff
from tests.test_console_access import csrf, signed_in, site  # noqa: F401 - fixture
from tests.test_intake import HEADER, V1, V2, V3, V4, make_vin, row

BAD_VIN = "LSVAU2180T2051637"  # wrong check digit


def deliveries_csv(rows: list[list[str]]) -> bytes:
    import csv

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def upload_form(token: str, data: bytes, name: str, what: str = "deliveries"
                ) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("_csrf", token)
    form.add_field("what", what)
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    return form


FIVE_ROWS = [
    row(V1, "张伟", "138 0013 8000"),  # row 2: good
    row(V2, "王芳", "12345"),  # row 3: bad phone
    row(BAD_VIN, "李强", "13700001234"),  # row 4: bad check digit
    row(V3, "刘洋", "13612345678"),  # row 5: good
    row(V4, "陈静", "15800001111"),  # row 6: good
]


@pytest.mark.parametrize("role,status", [("agent", 403), ("advisor", 403), ("marketing", 403),
                                         ("supervisor", 200), ("manager", 200), ("admin", 200)])
async def test_who_may_import(site: str, role: str, status: int) -> None:  # noqa: F811
    await add_staff(f"u-{role}", role)
    http = await signed_in(site, f"u-{role}")
    async with http:
        async with http.get(f"{site}/imports") as r:
            assert r.status == status
        token = await csrf(http, f"{site}/")
        async with http.post(f"{site}/imports", data=upload_form(
                token, deliveries_csv(FIVE_ROWS), "d.csv")) as r:
            assert r.status == (422 if status == 200 else 403)
    assert await Vehicle.all().count() == (3 if status == 200 else 0)


async def test_csv_upload_stores_good_rows_and_reports_bad_ones(site: str) -> None:  # noqa: F811
    await add_staff("imp", "supervisor")
    http = await signed_in(site, "imp")
    async with http:
        token = await csrf(http, f"{site}/imports")
        async with http.post(f"{site}/imports", data=upload_form(
                token, deliveries_csv(FIVE_ROWS), "十一月交车.csv")) as r:
            assert r.status == 422
            page = await r.text()
        assert 'id="count-created">3<' in page and 'id="count-failed">2<' in page
        assert "<td>3</td><td>phone</td>" in page and "<td>4</td><td>vin</td>" in page
        entry = await AuditLog.get(action="import.deliveries")
        assert entry.detail["file"] == "十一月交车.csv" and entry.detail["failed"] == 2
        async with http.get(f"{site}/imports/{entry.id}/errors.csv") as r:
            assert r.status == 200
            body = (await r.read()).decode("utf-8-sig").splitlines()
        assert body[0] == "Row,Field,Problem" and len(body) == 3
        assert body[1] == "3,phone,'12345' is not a valid phone number"
        async with http.get(f"{site}/imports") as r:
            assert "十一月交车.csv" in await r.text()  # in the history
        # Re-uploading the same file imports nothing twice.
        async with http.post(f"{site}/imports", data=upload_form(
                token, deliveries_csv(FIVE_ROWS), "again.csv")) as r:
            assert 'id="count-unchanged">3<' in await r.text()
    assert await Vehicle.all().count() == 3
    assert await Customer.filter(phone="+8613800138000").exists()
    assert await Touchpoint.filter(kind="delivery_checkin").count() == 3  # journeys written


async def test_xlsx_upload_and_unusable_files(site: str, tmp_path: Path) -> None:  # noqa: F811
    await add_staff("imp2", "manager")
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    sheet.append(row(make_vin(11), "赵六", "13900001111"))
    sheet.append(row(make_vin(12), "钱七", "not a phone"))
    buffer = io.BytesIO()
    book.save(buffer)
    http = await signed_in(site, "imp2")
    async with http:
        token = await csrf(http, f"{site}/imports")
        async with http.post(f"{site}/imports", data=upload_form(
                token, buffer.getvalue(), "d.xlsx")) as r:
            page = await r.text()
            assert r.status == 422 and 'id="count-created">1<' in page
        async with http.post(f"{site}/imports", data=upload_form(
                token, b"\xd0\xcf\x11\xe0 old excel", "old.xls")) as r:
            assert r.status == 422 and ".xlsx" in await r.text()
        async with http.post(f"{site}/imports", data=upload_form(
                token, b"vin,plate\n", "bad.csv")) as r:
            assert r.status == 422 and "bad.csv" in await r.text()  # names the file, not a temp
        async with http.post(f"{site}/imports", data=upload_form(
                token, b"x", "x.csv", what="owners")) as r:
            assert r.status == 422
    assert await Vehicle.all().count() == 1


async def test_a_chinese_reader_sees_the_problems_in_chinese(site: str) -> None:  # noqa: F811
    """The stored problems are the intake's words; the page and the error CSV give them in
    the reader's language (issue 18, point 1)."""
    await add_staff("zhou", "supervisor", language="zh_CN")
    http = await signed_in(site, "zhou")
    async with http:
        token = await csrf(http, f"{site}/imports")
        async with http.post(f"{site}/imports", data=upload_form(
                token, deliveries_csv(FIVE_ROWS), "十一月交车.csv")) as r:
            page = await r.text()
        assert "<td>3</td><td>手机号</td><td>&#39;12345&#39; 不是有效的手机号</td>" in page
        assert "第 9 位校验位是 0，应为 5，可能录入有误" in page and "is not a valid" not in page
        entry = await AuditLog.get(action="import.deliveries")
        async with http.get(f"{site}/imports/{entry.id}/errors.csv") as r:
            body = (await r.read()).decode("utf-8-sig").splitlines()
        assert body[0] == "行号,字段,问题"
        assert body[1] == "3,手机号,'12345' 不是有效的手机号"
