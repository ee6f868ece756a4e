"""One catalogue for every text the pages show: English message ids, Vietnamese first.

The Vietnamese translations live in ``locale/vi.po`` (gettext format, read with Babel, no
compile step). Messages the services raise in English are translated here too; those with
values in them are catalogued with ``{name}`` placeholders and matched as patterns, so
"CCCD starts with 083, ..." finds its translation. Anything uncatalogued is shown as is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
_LOCALE_DIR = Path(__file__).parent / "locale"
_PLACEHOLDER = re.compile(r"\\\{(\w+)\\\}")


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    translation: str


@dataclass(frozen=True)
class Messages:
    exact: dict[str, str]
    patterns: tuple[_Pattern, ...]


def _load(language: str) -> Messages:
    path = _LOCALE_DIR / f"{language}.po"
    if not path.exists():
        return Messages({}, ())
    with path.open("rb") as handle:
        catalog: Catalog = read_po(handle, locale=language)
    exact: dict[str, str] = {}
    patterns: list[_Pattern] = []
    for message in catalog:
        if not message.id or not isinstance(message.id, str) or not message.string:
            continue
        translation = str(message.string)
        exact[message.id] = translation
        if "{" in message.id:
            regex = _PLACEHOLDER.sub(r"(?P<\1>.+?)", re.escape(message.id))
            patterns.append(_Pattern(re.compile(f"^{regex}$"), translation))
    return Messages(exact, tuple(patterns))


@cache
def messages(language: str) -> Messages:
    return _load(language)


def language_of(value: str | None) -> str:
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def translate(language: str, text: str, **values: object) -> str:
    """The text in ``language``, with ``{name}`` placeholders filled from ``values``."""
    found = messages(language)
    translated = found.exact.get(text)
    if translated is None and not values:
        for pattern in found.patterns:
            match = pattern.regex.match(text)
            if match:
                return pattern.translation.format(**match.groupdict())
    result = translated or text
    return result.format(**values) if values else result


class Translator:
    """What templates call as ``_("text")``; bound to the page's language."""

    def __init__(self, language: str) -> None:
        self.language = language

    def __call__(self, text: str, **values: object) -> str:
        return translate(self.language, text, **values)


def format_moment(moment: datetime | None, language: str, zone: ZoneInfo) -> str:
    """A stored UTC moment shown in the local zone (Asia/Ho_Chi_Minh by default)."""
    if moment is None:
        return ""
    return format_datetime(moment, "dd/MM/yyyy HH:mm", tzinfo=zone, locale=language)


def format_day(day: date | None, language: str) -> str:
    if day is None:
        return ""
    return format_date(day, "dd/MM/yyyy", locale=language)
