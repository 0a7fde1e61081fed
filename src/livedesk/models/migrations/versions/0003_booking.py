"""booking tables

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "consultation_types",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("name_en", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("description_en", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("buffer_before_minutes", sa.Integer(), nullable=False),
        sa.Column("buffer_after_minutes", sa.Integer(), nullable=False),
        sa.Column("required_skills", _JSON, nullable=False),
        sa.Column("languages", _JSON, nullable=False),
        sa.Column("min_notice_minutes", sa.Integer(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("price_amount", sa.Integer(), nullable=True),
        sa.Column("deposit_amount", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultation_types")),
    )
    op.create_table(
        "advisor_weekly_hours",
        sa.Column("staff_id", sa.Uuid(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("start_minute", sa.Integer(), nullable=False),
        sa.Column("end_minute", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff.id"],
            name=op.f("fk_advisor_weekly_hours_staff_id_staff"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_advisor_weekly_hours")),
    )
    op.create_index("ix_advisor_weekly_hours_staff_id", "advisor_weekly_hours", ["staff_id"])
    op.create_table(
        "advisor_availability_exceptions",
        sa.Column("staff_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("off", "extra", name="exceptionkind", native_enum=False, length=10),
            nullable=False,
        ),
        sa.Column("start_minute", sa.Integer(), nullable=True),
        sa.Column("end_minute", sa.Integer(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff.id"],
            name=op.f("fk_advisor_availability_exceptions_staff_id_staff"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_advisor_availability_exceptions")),
    )
    op.create_index(
        "ix_advisor_availability_exceptions_staff_day", "advisor_availability_exceptions", ["staff_id", "day"]
    )
    op.create_table(
        "bookings",
        sa.Column("consultation_type_id", sa.Uuid(), nullable=False),
        sa.Column("advisor_id", sa.Uuid(), nullable=False),
        sa.Column("shopper_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "confirmed",
                "cancelled",
                "attended",
                "no_show_shopper",
                "no_show_advisor",
                name="bookingstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("starts_at", _TS, nullable=False),
        sa.Column("ends_at", _TS, nullable=False),
        sa.Column("block_start", _TS, nullable=False),
        sa.Column("block_end", _TS, nullable=False),
        sa.Column("nominated", sa.Boolean(), nullable=False),
        sa.Column("shopper_timezone", sa.String(length=64), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("contact_name", sa.String(length=200), nullable=False),
        sa.Column("contact_email", sa.String(length=254), nullable=False),
        sa.Column("contact_phone", sa.String(length=32), nullable=True),
        sa.Column("survey_response_id", sa.Uuid(), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Uuid(), nullable=True),
        sa.Column("cancelled_at", _TS, nullable=True),
        sa.Column("cancel_reason", sa.String(length=500), nullable=False),
        sa.Column("extra", _JSON, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["advisor_id"], ["staff.id"], name=op.f("fk_bookings_advisor_id_staff"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultations.id"],
            name=op.f("fk_bookings_consultation_id_consultations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["consultation_type_id"],
            ["consultation_types.id"],
            name=op.f("fk_bookings_consultation_type_id_consultation_types"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["shopper_id"], ["shoppers.id"], name=op.f("fk_bookings_shopper_id_shoppers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookings")),
    )
    op.create_index("ix_bookings_advisor_time", "bookings", ["advisor_id", "block_start", "block_end"])
    op.create_index("ix_bookings_status_start", "bookings", ["status", "starts_at"])
    op.create_index("ix_bookings_shopper_id", "bookings", ["shopper_id"])
    if op.get_bind().dialect.name == "postgresql":
        # No double booking, enforced by the database itself: two live bookings of one advisor
        # may not overlap (buffers included). btree_gist lets a GiST index compare the uuid.
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE bookings ADD CONSTRAINT ex_bookings_advisor_block EXCLUDE USING gist "
            "(advisor_id WITH =, tstzrange(block_start, block_end, '[)') WITH &&) "
            "WHERE (status IN ('confirmed', 'attended'))"
        )
    op.create_table(
        "booking_mails",
        sa.Column("booking_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "confirmation",
                "reminder",
                "rescheduled",
                "cancelled",
                name="bookingmailkind",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("lead_minutes", sa.Integer(), nullable=False),
        sa.Column("due_at", _TS, nullable=False),
        sa.Column("claimed_until", _TS, nullable=True),
        sa.Column("sent_at", _TS, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["bookings.id"],
            name=op.f("fk_booking_mails_booking_id_bookings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_mails")),
        sa.UniqueConstraint(
            "booking_id",
            "kind",
            "sequence",
            "lead_minutes",
            name=op.f("uq_booking_mails_booking_id_kind_sequence_lead_minutes"),
        ),
    )
    op.create_index("ix_booking_mails_due", "booking_mails", ["sent_at", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_booking_mails_due", table_name="booking_mails")
    op.drop_table("booking_mails")
    op.drop_index("ix_bookings_shopper_id", table_name="bookings")
    op.drop_index("ix_bookings_status_start", table_name="bookings")
    op.drop_index("ix_bookings_advisor_time", table_name="bookings")
    op.drop_table("bookings")
    op.drop_index(
        "ix_advisor_availability_exceptions_staff_day", table_name="advisor_availability_exceptions"
    )
    op.drop_table("advisor_availability_exceptions")
    op.drop_index("ix_advisor_weekly_hours_staff_id", table_name="advisor_weekly_hours")
    op.drop_table("advisor_weekly_hours")
    op.drop_table("consultation_types")
