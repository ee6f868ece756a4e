"""Schema migrations (Alembic): apply them, and tell whether a database is current."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from telehealth.db import Database
from telehealth.fhir.writethrough import backfill
from telehealth.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "no migrations found"
    return head


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``; blocking, so call it outside the event loop.
    At head, rows that predate their FHIR mapping (or were inserted by SQL, like the
    specialties) are given their first FHIR version."""
    command.upgrade(alembic_config(database_url), revision)
    if revision == "head":
        asyncio.run(_backfill_fhir(database_url))


async def _backfill_fhir(database_url: str) -> None:
    db = Database(Settings(database_url=database_url))
    try:
        async with db.unit_of_work() as session:
            await backfill(session)
    finally:
        await db.dispose()


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str

    @property
    def is_current(self) -> bool:
        return self.current == self.head


async def schema_state(db: Database) -> SchemaState:
    async with db.engine.connect() as connection:
        try:
            current = (
                await connection.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar()
        except DBAPIError:
            current = None
    return SchemaState(current=current, head=head_revision())
