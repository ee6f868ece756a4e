"""video sessions: rooms, participants, session events, recordings, channel spill

Revision ID: 0004
Revises: 0005
Create Date: 2026-11-24 20:10:25.026504
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import telehealth.db

revision: str = "0004"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "channel_spill",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("payload", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("channel_spill", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_channel_spill_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "room",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "scheduled",
                "open",
                "active",
                "ended",
                name="roomstate",
                native_enum=False,
                length=12,
            ),
            nullable=False,
        ),
        sa.Column("starts_at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("opens_at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closes_at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("opened_at", telehealth.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", telehealth.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("appointment_id"),
    )
    op.create_table(
        "recording",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("room_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("path", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("started_at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", telehealth.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["room.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("recording", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recording_room_id"), ["room_id"], unique=False)

    op.create_table(
        "room_participant",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("room_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "requester",
                "specialist",
                "invited",
                name="participantrole",
                native_enum=False,
                length=12,
            ),
            nullable=False,
        ),
        sa.Column("added_by", sa.Uuid(), nullable=True),
        sa.Column("consented_at", telehealth.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("connection_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("connected_at", telehealth.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["added_by"],
            ["user_account.id"],
        ),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["room.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("room_id", "user_id"),
    )
    with op.batch_alter_table("room_participant", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_room_participant_room_id"), ["room_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_room_participant_user_id"), ["user_id"], unique=False)

    op.create_table(
        "session_event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("room_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "join",
                "leave",
                "reconnect",
                "media_mode",
                "mute",
                "consent",
                "recording_start",
                "recording_stop",
                "quality",
                "precall",
                name="sessioneventkind",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("at", telehealth.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["room.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("session_event", schema=None) as batch_op:
        batch_op.create_index("ix_session_event_room", ["room_id", "at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("session_event", schema=None) as batch_op:
        batch_op.drop_index("ix_session_event_room")

    op.drop_table("session_event")
    with op.batch_alter_table("room_participant", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_room_participant_user_id"))
        batch_op.drop_index(batch_op.f("ix_room_participant_room_id"))

    op.drop_table("room_participant")
    with op.batch_alter_table("recording", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recording_room_id"))

    op.drop_table("recording")
    op.drop_table("room")
    with op.batch_alter_table("channel_spill", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_channel_spill_created_at"))

    op.drop_table("channel_spill")
