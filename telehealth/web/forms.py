"""Forms: from posted fields to the same input schemas the API validates, and back.

A rejected form is shown again with what the person typed and one message per field, in
their language; nothing of their input is lost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from litestar import Request
from pydantic import BaseModel, ValidationError

from telehealth.errors import TelehealthError
from telehealth.web.i18n import translate

SchemaT = TypeVar("SchemaT", bound=BaseModel)

# Pydantic's error types, as a person would read them.
_PYDANTIC_MESSAGES = {
    "missing": "is required",
    "string_too_short": "is required",
    "string_too_long": "is too long",
    "string_pattern_mismatch": "has the wrong format",
    "enum": "choose one of the options",
    "literal_error": "choose one of the options",
    "date_from_datetime_parsing": "is not a valid date",
    "date_parsing": "is not a valid date",
    "date_type": "is not a valid date",
    "uuid_parsing": "choose one of the options",
    "uuid_type": "choose one of the options",
    "bool_parsing": "choose yes or no",
    "extra_forbidden": "is not expected here",
    "too_short": "is required",
    "too_long": "is too long",
}


@dataclass
class FormState:
    """What the person typed, and what is wrong with it, field by field."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    message: str | None = None

    def __bool__(self) -> bool:
        return bool(self.errors or self.message)


async def posted(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The form's fields as stripped strings (the CSRF token left out)."""
    form = await request.form()
    return {
        name: str(value).strip()
        for name, value in form.items()
        if name != "_csrf_token" and isinstance(value, str)
    }


def to_schema(
    schema: type[SchemaT], values: Mapping[str, str], fields: tuple[str, ...], language: str
) -> tuple[SchemaT | None, FormState]:
    """Build ``schema`` from the named fields (empty ones left out)."""
    data = {name: values[name] for name in fields if values.get(name)}
    return validate(schema, data, values, language)


def validate(
    schema: type[SchemaT], data: Mapping[str, Any], values: Mapping[str, str], language: str
) -> tuple[SchemaT | None, FormState]:
    """Build ``schema`` from data already shaped (lists, dicts) out of the form's ``values``."""
    state = FormState(values=dict(values))
    try:
        return schema.model_validate(data), state
    except ValidationError as exc:
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "form"
            text = _PYDANTIC_MESSAGES.get(error["type"], "is not valid")
            state.errors.setdefault(name, translate(language, text))
        return None, state


def icd_codes(text: str) -> list[str]:
    """The ICD-10 codes of a field filled by the picker (or typed): commas, spaces or
    semicolons between them."""
    return [code for code in re.split(r"[\s,;]+", text) if code]


def clear_emptied(data: BaseModel, values: dict[str, str], names: tuple[str, ...]) -> None:
    """An optional field the person emptied is cleared (set to None), not left unchanged."""
    for name in names:
        if not values.get(name):
            setattr(data, name, None)


def refused(state: FormState, exc: TelehealthError, language: str) -> FormState:
    """The service's refusal, attached to the fields it names (or to the whole form)."""
    for problem in exc.problems:
        name = problem.field.split("[", 1)[0]  # diagnoses[1]: the field that lists them
        state.errors.setdefault(name, translate(language, problem.message))
    if not exc.problems:
        state.message = translate(language, exc.detail)
    elif not state.message:
        state.message = translate(language, "Please correct the fields marked below.")
    return state
