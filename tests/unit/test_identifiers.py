"""Vietnamese identifiers and names: the checks a clerk's typo must fail and real numbers pass."""

from __future__ import annotations

from datetime import date

import pytest

from telehealth.directory.identifiers import (
    IdentifierError,
    check_admin_unit,
    check_bhyt,
    check_cccd,
    check_phone,
    clean_name,
    fold_name,
)
from telehealth.directory.models import Gender


class TestCccd:
    def test_valid_number_is_returned_without_spaces(self) -> None:
        assert check_cccd(" 082 185 001234 ") == "082185001234"

    @pytest.mark.parametrize("value", ["08218500123", "0821850012345", "08218500123A", ""])
    def test_must_be_twelve_digits(self, value: str) -> None:
        with pytest.raises(IdentifierError, match="12 digits"):
            check_cccd(value)

    @pytest.mark.parametrize("prefix", ["000", "003", "099", "100", "963"])
    def test_first_three_digits_must_be_a_province(self, prefix: str) -> None:
        with pytest.raises(IdentifierError, match="province code"):
            check_cccd(prefix + "185001234")

    @pytest.mark.parametrize("prefix", ["001", "079", "082", "096"])
    def test_known_province_codes_pass(self, prefix: str) -> None:
        assert check_cccd(prefix + "185001234").startswith(prefix)

    @pytest.mark.parametrize(
        ("digit", "year", "gender"),
        [
            ("0", 1985, Gender.MALE),
            ("1", 1985, Gender.FEMALE),
            ("2", 2005, Gender.MALE),
            ("3", 2005, Gender.FEMALE),
        ],
    )
    def test_century_and_gender_digit_agree_with_the_person(
        self, digit: str, year: int, gender: Gender
    ) -> None:
        number = f"082{digit}{year % 100:02d}001234"
        assert check_cccd(number, birth_date=date(year, 5, 1), gender=gender) == number

    def test_birth_year_must_match(self) -> None:
        with pytest.raises(IdentifierError, match=r"1985.*1990"):
            check_cccd("082185001234", birth_date=date(1990, 1, 1))

    def test_century_must_match(self) -> None:
        # digit 2 means born 2000-2099: "85" is then 2085, not 1985.
        with pytest.raises(IdentifierError, match="2085"):
            check_cccd("082285001234", birth_date=date(1985, 1, 1))

    def test_gender_must_match(self) -> None:
        with pytest.raises(IdentifierError, match="gender female"):
            check_cccd("082185001234", gender=Gender.MALE)

    @pytest.mark.parametrize("gender", [Gender.OTHER, Gender.UNKNOWN])
    def test_other_genders_are_not_cross_checked(self, gender: Gender) -> None:
        assert check_cccd("082185001234", gender=gender) == "082185001234"


class TestBhyt:
    def test_valid_card_is_normalised_to_upper_case(self) -> None:
        assert check_bhyt("gd 4 82 0123456789") == "GD4820123456789"

    @pytest.mark.parametrize("value", ["GD482012345678", "GD48201234567890", ""])
    def test_must_be_fifteen_characters(self, value: str) -> None:
        with pytest.raises(IdentifierError, match="15 characters"):
            check_bhyt(value)

    @pytest.mark.parametrize(
        "value",
        [
            "G14820123456789",  # one letter only
            "GD0820123456789",  # benefit level 0
            "GD6820123456789",  # benefit level 6
            "GD48A0123456789",  # province not digits
            "GD482012345678X",  # social-insurance number not digits
            "ĐD4820123456789",  # not an ASCII letter
        ],
    )
    def test_structure_of_qd_1351(self, value: str) -> None:
        with pytest.raises(IdentifierError, match="2 letters"):
            check_bhyt(value)

    @pytest.mark.parametrize("level", "12345")
    def test_every_benefit_level_passes(self, level: str) -> None:
        assert check_bhyt(f"HT{level}790123456789")[2] == level


class TestPhone:
    @pytest.mark.parametrize(
        ("value", "e164"),
        [
            ("0912 345 678", "+84912345678"),
            ("+84 912 345 678", "+84912345678"),
            ("0912.345.678", "+84912345678"),
            ("02773 851 234", "+842773851234"),  # a landline in Đồng Tháp
        ],
    )
    def test_valid_numbers_become_e164(self, value: str, e164: str) -> None:
        assert check_phone(value) == e164

    @pytest.mark.parametrize("value", ["12", "0912", "abc", "09123456789012", "+1 555 0100"])
    def test_invalid_numbers_are_refused(self, value: str) -> None:
        with pytest.raises(IdentifierError):
            check_phone(value)


class TestAdministrativeUnits:
    @pytest.mark.parametrize(
        ("code", "stored"), [("82", "82"), ("1", "01"), ("01", "01"), (" 28261 ", "28261")]
    )
    def test_current_codes_pass(self, code: str, stored: str) -> None:
        assert check_admin_unit(code) == stored

    @pytest.mark.parametrize("code", ["99", "0", "99999", "1234", "123456", "ab", "", "²", "8 2"])
    def test_unknown_or_malformed_codes_are_refused(self, code: str) -> None:
        with pytest.raises(IdentifierError):
            check_admin_unit(code)


class TestNames:
    @pytest.mark.parametrize(
        ("name", "folded"),
        [
            ("Nguyễn Văn An", "nguyen van an"),
            ("Đặng Thị Ánh", "dang thi anh"),
            ("ĐẶNG  QUỐC   BẢO", "dang quoc bao"),
            ("nguyen", "nguyen"),
            ("Trương Thị Hằng", "truong thi hang"),
        ],
    )
    def test_fold_name_drops_diacritics_case_and_extra_spaces(self, name: str, folded: str) -> None:
        assert fold_name(name) == folded

    def test_decomposed_and_composed_input_fold_alike(self) -> None:
        decomposed = "Nguye\u0302\u0303n"  # e + combining circumflex + combining tilde
        assert fold_name(decomposed) == fold_name("Nguyễn") == "nguyen"

    def test_clean_name_keeps_diacritics_and_composes(self) -> None:
        assert clean_name("  Nguye\u0302\u0303n   Văn An ") == "Nguyễn Văn An"
