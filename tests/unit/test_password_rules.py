"""The password rules that need no database: the length by two-factor state, the common
list and the username in disguise."""

from __future__ import annotations

import pytest

from telehealth.auth.passwords import check_new_password, minimum_length
from telehealth.errors import InvalidInput
from telehealth.settings import Settings

SETTINGS = Settings(password_min_length=12, password_min_length_without_2fa=16)


def test_the_minimum_is_longer_without_two_factor() -> None:
    assert minimum_length(SETTINGS, two_factor=True) == 12
    assert minimum_length(SETTINGS, two_factor=False) == 16
    check_new_password(SETTINGS, "Mot-hai-ba-4", username="bs.an", two_factor=True)
    with pytest.raises(InvalidInput):
        check_new_password(SETTINGS, "Mot-hai-ba-4", username="bs.an", two_factor=False)


@pytest.mark.parametrize(
    "password",
    ["QWERTYUIOP123456", "Password2026!!!!!!", "bs.an.bs.an.2026-12", "na.sb-1234567890"],
)
def test_common_passwords_and_the_username_are_refused_whatever_the_case(password: str) -> None:
    with pytest.raises(InvalidInput):
        check_new_password(SETTINGS, password, username="bs.an", two_factor=False)


def test_a_long_unusual_password_that_contains_a_common_word_is_allowed() -> None:
    check_new_password(SETTINGS, "password-of-the-bs.an-clinic", username="bs.an", two_factor=False)
