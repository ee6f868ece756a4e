"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import telehealth.schema  # noqa: F401  (registers every table)
from telehealth.db import Database
from telehealth.migrate import head_revision, schema_state


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "render_as_batch": True}
    )
    return list(compare_metadata(context, SQLModel.metadata))


async def test_migrated_database_matches_the_models(db: Database) -> None:
    """The test database was built by ``alembic upgrade head`` from nothing (see conftest)."""
    state = await schema_state(db)
    assert state.current == head_revision()
    async with db.engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    assert differences == [], "models and migrations disagree; autogenerate a revision"
