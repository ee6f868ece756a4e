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
from sqlalchemy.ext.asyncio import AsyncEngine

from telehealth.db import Database, create_engine
from telehealth.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"

# Revision 0001 squashed the chain that ended at 0022, before any production database existed.
# A database that chain built to its end has exactly 0001's schema (compared on both databases
# when squashing), so it is relabelled rather than refused as being at an unknown revision.
SQUASHED_HEADS = {"0022": "0001"}


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
    """Apply migrations up to ``revision``; blocking, so call it outside the event loop. The
    schema only: ``telehealth.reactions.upgrade_database`` also writes the FHIR versions."""
    config = alembic_config(database_url)
    current = asyncio.run(_current_revision(database_url))
    if current in SQUASHED_HEADS:
        command.stamp(config, SQUASHED_HEADS[current], purge=True)
    command.upgrade(config, revision)


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str

    @property
    def is_current(self) -> bool:
        return self.current == self.head


async def _read_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        try:
            return (
                await connection.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar()
        except DBAPIError:
            return None


async def _current_revision(database_url: str) -> str | None:
    engine = create_engine(Settings(database_url=database_url))
    try:
        return await _read_revision(engine)
    finally:
        await engine.dispose()


async def schema_state(db: Database) -> SchemaState:
    return SchemaState(current=await _read_revision(db.engine), head=head_revision())
