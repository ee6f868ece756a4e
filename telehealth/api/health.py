"""GET /health: is the service up, and can it reach a current database schema."""

from __future__ import annotations

from litestar import Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from telehealth import __version__
from telehealth.http.dependencies import DatabaseDep
from telehealth.migrate import schema_state


class Health(BaseModel):
    status: str
    version: str
    database: str
    schema_version: str


@get("/health", tags=["operations"], summary="Liveness and database state (no login needed)")
async def health(db: DatabaseDep) -> Response[Health]:
    try:
        state = await schema_state(db)
    except (SQLAlchemyError, OSError):
        return Response(
            Health(
                status="unavailable",
                version=__version__,
                database="unreachable",
                schema_version="?",
            ),
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
        )
    ok = state.is_current
    return Response(
        Health(
            status="ok" if ok else "degraded",
            version=__version__,
            database=db.dialect,
            schema_version=state.current or "none",
        ),
        status_code=HTTP_200_OK if ok else HTTP_503_SERVICE_UNAVAILABLE,
    )
