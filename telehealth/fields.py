"""Input types that every area's schemas share: printable text of bounded length, an email
address, "may be left out but not null", and the base of every schema (``extra="forbid"``)."""

from __future__ import annotations

import unicodedata
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

T = TypeVar("T")


def printable(value: str) -> str:
    """Refuse control characters (NUL, escapes): no person types them, no database wants them."""
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise ValueError("contains control characters")
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=120),
    AfterValidator(printable),
]
ShortText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=300),
    AfterValidator(printable),
]
Email = Annotated[
    str,
    StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=200),
    AfterValidator(printable),
]


def not_null(value: T | None) -> T:
    """For updates: a field may be left out, but not set to null if the record needs it."""
    if value is None:
        raise ValueError("may be left out, but not set to null")
    return value


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)
