"""Audit: a hash chain over audit_event (seq, prev_hash, hash) and retention checkpoints

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 10:00:00.000000

Rows written before this revision are chained here, oldest first (by recorded_at, then id),
starting from the genesis value, so that every row is covered.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import telehealth.db

# The hash format is a stored contract, not code that may drift: the migration hashes with
# the same function the writer and `telehealth audit verify` use.
from telehealth.auth.audit_chain import START, chained

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000

# The columns as 0001 made them, typed as the service reads them (UTC datetimes, UUIDs).
_audit = sa.table(
    "audit_event",
    sa.column("id", sa.Uuid()),
    sa.column("recorded_at", telehealth.db.UTCDateTime(timezone=True)),
    *(
        sa.column(name, sa.String())
        for name in (
            "actor_kind",
            "actor_id",
            "actor_name",
            "action",
            "entity_type",
            "entity_id",
            "outcome",
            "ip",
            "user_agent",
            "request_id",
            "detail",
        )
    ),
    sa.column("patient_id", sa.Uuid()),
    sa.column("seq", sa.BigInteger()),
    sa.column("prev_hash", sa.String()),
    sa.column("hash", sa.String()),
)

# Takes the chain's lock (held to the end of the transaction), then reads the newest link.
# VOLATILE: its query gets a snapshot taken after the lock was granted, so it sees the rows
# the previous holder committed (a single SELECT would not: its snapshot predates the wait).
TAIL_FUNCTION = """
CREATE FUNCTION audit_chain_tail(OUT seq bigint, OUT hash varchar) LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1635083369);  -- 'audi': the audit chain's lock
    SELECT e.seq, e.hash INTO seq, hash FROM audit_event e ORDER BY e.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        SELECT c.seq, c.hash INTO seq, hash FROM audit_checkpoint c ORDER BY c.seq DESC LIMIT 1;
    END IF;
END
$$
"""


def _chain_existing_rows(connection: sa.Connection) -> None:
    tail = START
    after: tuple[object, object] | None = None
    order = (_audit.c.recorded_at, _audit.c.id)
    while True:
        query = sa.select(_audit).order_by(*order).limit(BATCH)
        if after is not None:
            query = query.where(sa.tuple_(*order) > sa.tuple_(*after))
        rows = [dict(row._mapping) for row in connection.execute(query)]
        if not rows:
            return
        tail = chained(rows, tail)
        connection.execute(
            _audit.update()
            .where(_audit.c.id == sa.bindparam("row_id"))
            .values(seq=sa.bindparam("s"), prev_hash=sa.bindparam("p"), hash=sa.bindparam("h")),
            [{"row_id": r["id"], "s": r["seq"], "p": r["prev_hash"], "h": r["hash"]} for r in rows],
        )
        after = (rows[-1]["recorded_at"], rows[-1]["id"])


def upgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
    _chain_existing_rows(op.get_bind())
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column(
            "prev_hash", existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        )
        batch_op.alter_column(
            "hash", existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        )
        batch_op.create_index("ux_audit_event_seq", ["seq"], unique=True)
    op.create_table(
        "audit_checkpoint",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("pruned_at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("pruned_rows", sa.BigInteger(), nullable=False),
        sa.Column("recorded_before", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(TAIL_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_chain_tail()")
    op.drop_table("audit_checkpoint")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index("ux_audit_event_seq")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
