"""/api routes of code lists: WHO ICD-10 search for diagnosis pickers."""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.params import QueryParameter
from pydantic import BaseModel

from telehealth.terminology import icd10


class Icd10Read(BaseModel):
    code: str
    display: str


@get("/api/terminology/icd10", tags=["terminology"], sync_to_thread=False)
def search_icd10(
    q: Annotated[str, QueryParameter(min_length=1, max_length=80, description="code or words")],
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
) -> list[Icd10Read]:
    """WHO ICD-10 codes whose code or English title contains every word of ``q``."""
    return [Icd10Read(code=c.code, display=c.display) for c in icd10.search(q, limit)]
