"""Vietnamese identifiers and names: pure checks with messages a clerk can act on.

- CCCD (citizen identity card, Circular 59/2021/TT-BCA): 12 digits; 3-digit province code
  of birth registration, 1 digit for gender and century, 2 digits of the birth year, 6 digits.
- BHYT (health insurance card, QĐ 1351/QĐ-BHXH): 15 characters; 2-letter beneficiary group,
  benefit level 1-5, 2-digit province, 10-digit social-insurance number.
- Phone numbers are checked by Google's libphonenumber metadata and stored as E.164.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

import phonenumbers
from unidecode import unidecode
from vietnam_provinces import Province, Ward

from telehealth.directory.models import Gender

# GSO codes of the 63 provinces that issued CCCD numbers before the 2025 merger.
CCCD_PROVINCE_CODES = frozenset(
    f"{code:03d}"
    for code in (
        1,
        2,
        4,
        6,
        8,
        10,
        11,
        12,
        14,
        15,
        17,
        19,
        20,
        22,
        24,
        25,
        26,
        27,
        30,
        31,
        33,
        34,
        35,
        36,
        37,
        38,
        40,
        42,
        44,
        45,
        46,
        48,
        49,
        51,
        52,
        54,
        56,
        58,
        60,
        62,
        64,
        66,
        67,
        68,
        70,
        72,
        74,
        75,
        77,
        79,
        80,
        82,
        83,
        84,
        86,
        87,
        89,
        91,
        92,
        93,
        94,
        95,
        96,
    )
)
# Fourth CCCD digit -> (first year of the century, gender).
_CCCD_CENTURY_GENDER = {
    "0": (1900, Gender.MALE),
    "1": (1900, Gender.FEMALE),
    "2": (2000, Gender.MALE),
    "3": (2000, Gender.FEMALE),
    "4": (2100, Gender.MALE),
    "5": (2100, Gender.FEMALE),
    "6": (2200, Gender.MALE),
    "7": (2200, Gender.FEMALE),
    "8": (1800, Gender.MALE),
    "9": (1800, Gender.FEMALE),
}
_BHYT = re.compile(r"^[A-Z]{2}[1-5]\d{2}\d{10}$")


class IdentifierError(ValueError):
    """An identifier that cannot be right; the message says what to fix."""


def check_cccd(value: str, *, birth_date: date | None = None, gender: Gender | None = None) -> str:
    number = value.strip().replace(" ", "")
    if not re.fullmatch(r"\d{12}", number):
        raise IdentifierError("CCCD must be exactly 12 digits")
    if number[:3] not in CCCD_PROVINCE_CODES:
        raise IdentifierError(f"CCCD starts with {number[:3]}, which is not a province code")
    century, coded_gender = _CCCD_CENTURY_GENDER[number[3]]
    if birth_date is not None and century + int(number[4:6]) != birth_date.year:
        raise IdentifierError(
            f"CCCD encodes birth year {century + int(number[4:6])}, "
            f"but the birth date is in {birth_date.year}"
        )
    if gender in (Gender.MALE, Gender.FEMALE) and gender != coded_gender:
        raise IdentifierError(f"CCCD encodes gender {coded_gender.value}, not {gender.value}")
    return number


def check_bhyt(value: str) -> str:
    number = value.strip().replace(" ", "").upper()
    if len(number) != 15:
        raise IdentifierError("BHYT card number must be 15 characters, e.g. DN4790123456789")
    if not _BHYT.fullmatch(number):
        raise IdentifierError(
            "BHYT card number must be 2 letters, a benefit level 1-5, "
            "a 2-digit province code and 10 digits"
        )
    return number


def check_phone(value: str) -> str:
    try:
        parsed = phonenumbers.parse(value, "VN")
    except phonenumbers.NumberParseException as exc:
        raise IdentifierError("not a phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise IdentifierError("not a valid phone number (e.g. 0912 345 678 or +84 912 345 678)")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def check_admin_unit(code: str) -> str:
    """A province (2 digits) or ward/commune (5 digits) code of the current divisions."""
    digits = code.strip()
    if not re.fullmatch(r"[0-9]{1,2}|[0-9]{5}", digits):
        raise IdentifierError(
            "administrative unit code must be a 2-digit province or 5-digit ward/commune code"
        )
    try:
        if len(digits) <= 2:
            Province.from_code(int(digits))  # type: ignore[arg-type]
            digits = digits.zfill(2)
        else:
            Ward.from_code(int(digits))  # type: ignore[arg-type]
    except ValueError as exc:
        raise IdentifierError(f"{digits} is not a current administrative unit code") from exc
    return digits


def fold_name(name: str) -> str:
    """Lower-case ASCII with single spaces: 'Nguyễn  Văn An' -> 'nguyen van an'."""
    ascii_text = unidecode(unicodedata.normalize("NFC", name))
    return " ".join(ascii_text.lower().split())


def clean_name(name: str) -> str:
    return " ".join(unicodedata.normalize("NFC", name).split())
