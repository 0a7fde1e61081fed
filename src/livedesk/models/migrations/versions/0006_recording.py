"""recording tables

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("consultation_id", sa.Uuid(), nullable=False),
        sa.Column("shopper_id", sa.Uuid(), nullable=False),
        sa.Column("advisor_id", sa.Uuid(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "awaiting_consent",
                "recording",
                "processing",
                "ready",
                "refused",
                "failed",
                "deleting",
                name="recordingstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "policy",
            sa.Enum("ask", "announce", name="consentpolicy", native_enum=False, length=12),
            nullable=False,
        ),
        sa.Column("with_video", sa.Boolean(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("storage_key", sa.String(length=300), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("joining_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["advisor_id"], ["staff.id"], name=op.f("fk_recordings_advisor_id_staff"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultations.id"],
            name=op.f("fk_recordings_consultation_id_consultations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["shopper_id"],
            ["shoppers.id"],
            name=op.f("fk_recordings_shopper_id_shoppers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
    )
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.create_index("ix_recordings_consultation_id", ["consultation_id"], unique=False)
        batch_op.create_index("ix_recordings_shopper_id", ["shopper_id"], unique=False)
        batch_op.create_index("ix_recordings_status_expires", ["status", "expires_at"], unique=False)

    op.create_table(
        "recording_consents",
        sa.Column("recording_id", sa.Uuid(), nullable=False),
        sa.Column("participant", sa.String(length=16), nullable=False),
        sa.Column("staff_id", sa.Uuid(), nullable=True),
        sa.Column(
            "decision",
            sa.Enum("accepted", "refused", "announced", name="consentdecision", native_enum=False, length=12),
            nullable=False,
        ),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["recording_id"],
            ["recordings.id"],
            name=op.f("fk_recording_consents_recording_id_recordings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_recording_consents_staff_id_staff"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_consents")),
    )
    with op.batch_alter_table("recording_consents", schema=None) as batch_op:
        batch_op.create_index("ix_recording_consents_recording_id", ["recording_id"], unique=False)

    op.create_table(
        "recording_parts",
        sa.Column("recording_id", sa.Uuid(), nullable=False),
        sa.Column("participant", sa.String(length=16), nullable=False),
        sa.Column("storage_key", sa.String(length=300), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("video_frames", sa.Integer(), nullable=False),
        sa.Column("audio_frames", sa.Integer(), nullable=False),
        sa.Column("stored", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["recording_id"],
            ["recordings.id"],
            name=op.f("fk_recording_parts_recording_id_recordings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_parts")),
    )
    with op.batch_alter_table("recording_parts", schema=None) as batch_op:
        batch_op.create_index("ix_recording_parts_recording_id", ["recording_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("recording_parts", schema=None) as batch_op:
        batch_op.drop_index("ix_recording_parts_recording_id")
    op.drop_table("recording_parts")
    with op.batch_alter_table("recording_consents", schema=None) as batch_op:
        batch_op.drop_index("ix_recording_consents_recording_id")
    op.drop_table("recording_consents")
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_index("ix_recordings_status_expires")
        batch_op.drop_index("ix_recordings_shopper_id")
        batch_op.drop_index("ix_recordings_consultation_id")
    op.drop_table("recordings")
