"""Identity proof: pending bookings, link nonces and e-mail verifications

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 04:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE_BEFORE = "('confirmed', 'attended')"
# A pending booking holds its advisor's time too (until it is confirmed or expires).
_LIVE_AFTER = "('pending', 'confirmed', 'attended')"


def _exclusion(statuses: str) -> None:
    op.execute("ALTER TABLE bookings DROP CONSTRAINT IF EXISTS ex_bookings_advisor_block")
    op.execute(
        "ALTER TABLE bookings ADD CONSTRAINT ex_bookings_advisor_block EXCLUDE USING gist "
        "(advisor_id WITH =, tstzrange(block_start, block_end, '[)') WITH &&) "
        f"WHERE (status IN {statuses})"
    )


def upgrade() -> None:
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("link_nonce", sa.String(length=32), nullable=False, server_default=""))
    op.create_index("ix_bookings_contact_email_created", "bookings", ["contact_email", "created_at"])
    if op.get_bind().dialect.name == "postgresql":
        _exclusion(_LIVE_AFTER)
    op.create_table(
        "email_verifications",
        sa.Column("shopper_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column(
            "purpose",
            sa.Enum("booking", "link", name="verificationpurpose", native_enum=False, length=10),
            nullable=False,
        ),
        sa.Column("booking_id", sa.Uuid(), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=False, server_default=""),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shopper_id"],
            ["shoppers.id"],
            name=op.f("fk_email_verifications_shopper_id_shoppers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["bookings.id"],
            name=op.f("fk_email_verifications_booking_id_bookings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_verifications")),
    )
    op.create_index("ix_email_verifications_email_created", "email_verifications", ["email", "created_at"])
    op.create_index("ix_email_verifications_shopper_id", "email_verifications", ["shopper_id"])
    op.create_index("ix_email_verifications_booking_id", "email_verifications", ["booking_id"])


def downgrade() -> None:
    op.drop_index("ix_email_verifications_booking_id", table_name="email_verifications")
    op.drop_index("ix_email_verifications_shopper_id", table_name="email_verifications")
    op.drop_index("ix_email_verifications_email_created", table_name="email_verifications")
    op.drop_table("email_verifications")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE bookings SET status = 'expired' WHERE status = 'pending'")
        _exclusion(_LIVE_BEFORE)
    op.drop_index("ix_bookings_contact_email_created", table_name="bookings")
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_column("link_nonce")
        batch_op.drop_column("pending_until")
