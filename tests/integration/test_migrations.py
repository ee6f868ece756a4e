"""The Alembic migrations build exactly the schema the models describe, on both databases,
and take it down again without a trace."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ClauseElement
from sqlmodel import SQLModel

import telehealth.schema  # noqa: F401  (registers every table)
from telehealth.db import Database
from telehealth.migrate import alembic_config, head_revision, schema_state, upgrade
from telehealth.settings import Settings
from tests.e2e.test_cli import empty_database_url

__all__ = ["empty_database_url"]  # the fixture: a database with nothing in it


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "render_as_batch": True}
    )
    return list(compare_metadata(context, SQLModel.metadata))


def _sql(statement: str | None) -> str:
    return re.sub(r"\s+", " ", statement or "").strip()


def _plain(value: Any) -> Any:
    """Reflected values made comparable: a partial index's WHERE clause by its text."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, ClauseElement):
        return _sql(str(value))
    return value


def _each(reflected: list[Any]) -> list[str]:
    return sorted(repr(_plain(item)) for item in reflected)


def schema_of(connection: Connection) -> dict[str, Any]:
    """Everything a migration decides, read back from the database: per table its columns in
    order (type, nullability, default), keys, foreign keys, indexes (with their WHERE) and
    checks; SQLite's triggers; PostgreSQL's functions, extensions and exclusion constraints."""
    inspector = inspect(connection)
    tables: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        tables[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c["default"])
                for c in inspector.get_columns(table)
            ],
            "primary_key": _plain(inspector.get_pk_constraint(table)),
            "foreign_keys": _each(inspector.get_foreign_keys(table)),
            "indexes": _each(inspector.get_indexes(table)),
            "unique": _each(inspector.get_unique_constraints(table)),
            "checks": _each(inspector.get_check_constraints(table)),
        }
    extra: list[tuple[str, ...]]
    if connection.dialect.name == "sqlite":
        extra = [
            (kind, name, _sql(sql))
            for kind, name, sql in connection.execute(
                text(
                    "SELECT type, name, sql FROM sqlite_master"
                    " WHERE type IN ('index', 'trigger') AND sql IS NOT NULL"  # not a key's own
                    " ORDER BY type, name"
                )
            )
        ]
    else:
        extra = [
            (kind, name, _sql(definition))
            for kind, name, definition in connection.execute(
                text(
                    "SELECT 'function', p.proname, pg_get_functiondef(p.oid) FROM pg_proc p"
                    " JOIN pg_namespace n ON n.oid = p.pronamespace AND n.nspname = 'public'"
                    " WHERE p.prokind = 'f' AND NOT EXISTS (SELECT 1 FROM pg_depend d"
                    "   WHERE d.objid = p.oid AND d.deptype = 'e')"
                    " UNION ALL SELECT 'extension', extname, extversion FROM pg_extension"
                    " UNION ALL SELECT 'constraint', conname, pg_get_constraintdef(oid)"
                    "   FROM pg_constraint WHERE contype = 'x'"
                    " ORDER BY 1, 2"
                )
            )
        ]
    return {"tables": tables, "extra": extra}


async def _schema(url: str) -> dict[str, Any]:
    db = Database(Settings(database_url=url))
    try:
        async with db.engine.connect() as connection:
            return await connection.run_sync(schema_of)
    finally:
        await db.dispose()


async def test_migrated_database_matches_the_models(db: Database) -> None:
    """The test database was built by ``alembic upgrade head`` from nothing (see conftest)."""
    state = await schema_state(db)
    assert state.current == head_revision()
    async with db.engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    assert differences == [], "models and migrations disagree; autogenerate a revision"


async def test_downgrade_to_base_then_upgrade_returns_the_same_schema(
    empty_database_url: str,
) -> None:
    await asyncio.to_thread(upgrade, empty_database_url)
    migrated = await _schema(empty_database_url)
    assert "appointment" in migrated["tables"]

    config = alembic_config(empty_database_url)
    await asyncio.to_thread(command.downgrade, config, "base")
    emptied = await _schema(empty_database_url)
    assert list(emptied["tables"]) == ["alembic_version"]
    assert [kind for kind, *_ in emptied["extra"]] in (
        [],  # SQLite: no trigger or index left
        ["extension", "extension"],  # PostgreSQL: plpgsql, and btree_gist, which is kept
    )

    await asyncio.to_thread(upgrade, empty_database_url)
    assert await _schema(empty_database_url) == migrated


async def test_a_database_the_squashed_chain_built_is_relabelled_and_keeps_its_rows(
    empty_database_url: str,
) -> None:
    """The chain squashed into 0001 ended at 0022 with 0001's schema; a database it built (here
    one at 0001, labelled as that chain left it) migrates to head without losing a row."""
    await asyncio.to_thread(upgrade, empty_database_url, "0001")
    db = Database(Settings(database_url=empty_database_url))
    count = text("SELECT count(*) FROM specialty")
    try:
        async with db.engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = '0022'"))
            specialties = (await connection.execute(count)).scalar_one()
        assert specialties > 0 and not (await schema_state(db)).is_current
        await db.dispose()

        await asyncio.to_thread(upgrade, empty_database_url)
        assert (await schema_state(db)).is_current
        async with db.engine.connect() as connection:
            assert (await connection.execute(count)).scalar_one() == specialties
    finally:
        await db.dispose()
