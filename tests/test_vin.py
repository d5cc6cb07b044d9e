"""VIN and phone normalisation: the two keys the customer file is matched on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.phones import PhoneError, normalize_phone, parse_phone
from bot.vin import check_digit, check_vin, normalize_vin

VALID_CN = "LSVAU2185T2051637"  # SAIC Volkswagen, check digit 5
VALID_US = "1M8GDM9AXKP042788"  # the textbook example: check digit X
BAD_CN = "LSVAU2180T2051637"  # same VIN, check digit should be 5
# A real European BMW VIN whose 9th character is not an ISO check digit (Europe does not
# require one); the same kind of mismatch as BAD_CN.
EURO = "WBA3A5C50CF256985"


@pytest.mark.parametrize(
    ("raw", "vin", "error", "warning"),
    [
        pytest.param(VALID_CN, VALID_CN, None, None, id="valid China VIN"),
        pytest.param(VALID_US, VALID_US, None, None, id="valid US VIN with X"),
        pytest.param(BAD_CN, BAD_CN, "should be 5", None, id="China bad check digit: error"),
        pytest.param("1M8GDM9A0KP042788", "1M8GDM9A0KP042788", "should be X", None, id="US bad"),
        pytest.param(EURO, EURO, None, "should be 3", id="Europe bad check digit: warning"),
        pytest.param("JHMCM56557C404453", "JHMCM56557C404453", None, None, id="Japan valid"),
        pytest.param("LSVAU2185T2O51637", "LSVAU2185T2O51637", "contains O", None, id="letter O"),
        pytest.param("LSVAU2185T2I51637", "LSVAU2185T2I51637", "contains I", None, id="letter I"),
        pytest.param("QSVAU2185T2051637", "QSVAU2185T2051637", "contains Q", None, id="letter Q"),
        pytest.param("LSVAU2185T205163", "LSVAU2185T205163", "has 16 characters", None, id="16"),
        pytest.param("LSVAU2185T20516370", None, "has 18 characters", None, id="18 chars"),
        pytest.param("LSVAU2185T20516#7", None, "only letters and digits", None, id="symbol"),
        pytest.param("", "", "is required", None, id="empty"),
        pytest.param("ＬＳＶＡＵ２１８５Ｔ２０５１６３７", VALID_CN, None, None, id="full-width"),
        pytest.param(" lsvau 2185-t205 1637 ", VALID_CN, None, None, id="spaces, dashes, case"),
        pytest.param("LSVAU2185T2051637\u3000", VALID_CN, None, None, id="ideographic space"),
    ],
)
def test_check_vin(raw: str, vin: str | None, error: str | None, warning: str | None) -> None:
    result = check_vin(raw)
    if vin is not None:
        assert result.vin == vin
    if error is None:
        assert result.error is None, result.error
        assert result.ok
    else:
        assert result.error is not None and error in result.error
        assert not result.ok
    if warning is None:
        assert result.warning is None
    else:
        assert result.warning is not None and warning in result.warning


def test_normalize_vin_is_idempotent_and_upper() -> None:
    assert normalize_vin("lsvau2185t2051637") == VALID_CN
    assert normalize_vin(normalize_vin(" ｌｓｖ au ")) == "LSVAU"


_VIN_ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"


@given(st.text(alphabet=_VIN_ALPHABET, min_size=17, max_size=17), st.sampled_from("L12345WJK"))
def test_any_vin_with_its_computed_check_digit_is_valid(body: str, region: str) -> None:
    vin = region + body[1:]
    vin = vin[:8] + check_digit(vin) + vin[9:]
    assert check_vin(vin).ok and check_vin(vin).warning is None
    assert check_vin(vin.lower()).vin == vin


@given(st.text(alphabet=_VIN_ALPHABET, min_size=17, max_size=17))
def test_wrong_check_digit_is_an_error_in_china_and_a_warning_in_europe(body: str) -> None:
    cn = "L" + body[1:]
    right = check_digit(cn)
    wrong = "0" if right != "0" else "1"
    assert not check_vin(cn[:8] + wrong + cn[9:]).ok
    eu = "W" + body[1:]
    wrong_eu = "0" if check_digit(eu) != "0" else "1"
    checked = check_vin(eu[:8] + wrong_eu + eu[9:])
    assert checked.ok and checked.warning is not None


@pytest.mark.parametrize(
    "raw",
    [
        "138 0013 8000",
        "13800138000",
        "138-0013-8000",
        "+86 138 0013 8000",
        "+8613800138000",
        "0086 138 0013 8000",
        "008613800138000",
        "+86 (0)138 0013 8000",
        "１３８００１３８０００",
        "13800138000.0",
    ],
)
def test_phone_forms_normalise_to_e164(raw: str) -> None:
    assert normalize_phone(raw) == "+8613800138000"


@pytest.mark.parametrize("raw", ["12345", "abc", "138001380001234", "", "1.38001E+10", "+86 1"])
def test_junk_phones_are_rejected(raw: str) -> None:
    with pytest.raises(PhoneError, match="is not a valid phone number"):
        normalize_phone(raw)


def test_scientific_notation_phone_explains_the_fix() -> None:
    with pytest.raises(PhoneError, match="format the phone column as text"):
        normalize_phone("1.38001E+10")


def test_foreign_and_landline_numbers() -> None:
    assert normalize_phone("+1 650 253 0000") == "+16502530000"
    landline = parse_phone("021-6888 8888")
    assert landline.e164 == "+862168888888"
    assert landline.landline
    assert not parse_phone("13800138000").landline
