"""The Vietnamese catalogue covers every text the pages show, and fills in values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from telehealth.consent.models import ConsentPurpose
from telehealth.consent.rules import already_recorded
from telehealth.web.i18n import messages, translate
from telehealth.web.render import NAV

WEB = Path(__file__).resolve().parents[2] / "telehealth" / "web"
LITERAL = re.compile(r"""\b_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")


def page_texts() -> set[str]:
    texts: set[str] = set()
    for template in WEB.rglob("*.html"):
        for match in LITERAL.finditer(template.read_text()):
            texts.add(match.group(1) if match.group(1) is not None else match.group(2))
    texts.update(item.label for items in NAV.values() for item in items)
    return texts


@pytest.mark.parametrize("text", sorted(page_texts()))
def test_every_page_text_has_a_vietnamese_translation(text: str) -> None:
    assert messages("vi").exact.get(text), f"add {text!r} to telehealth/web/locale/vi.po"


def test_service_messages_with_values_are_translated() -> None:
    assert (
        translate("vi", "CCCD starts with 083, which is not a province code")
        == "Số CCCD bắt đầu bằng 083, không phải mã tỉnh"
    )
    assert translate("vi", "The username 'bs.xa1' is taken") == (
        "Tên đăng nhập 'bs.xa1' đã có người dùng"
    )


def test_english_is_the_message_itself_and_unknown_text_passes_through() -> None:
    assert translate("en", "Hello, {name}", name="An") == "Hello, An"
    assert translate("vi", "Hello, {name}", name="An") == "Xin chào, An"
    assert translate("vi", "a message nobody catalogued") == "a message nobody catalogued"


@pytest.mark.parametrize("purpose", list(ConsentPurpose))
def test_a_consent_recorded_twice_is_refused_in_vietnamese(purpose: ConsentPurpose) -> None:
    said = already_recorded(purpose).detail
    assert translate("vi", said) != said
