"""payment_refunds as a lifecycle: one row per provider refund (unique provider_ref), the
provider's failure reason, and when the current status was learnt; booking_payments (the
deposit or price taken at booking) and consultation_types.payment_capture

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 01:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch_alter_table: SQLite rebuilds the table to add the unique constraint.
    with op.batch_alter_table("payment_refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failure_reason", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("status_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(op.f("uq_payment_refunds_provider_ref"), ["provider_ref"])

    with op.batch_alter_table("consultation_types", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("payment_capture", sa.String(length=10), nullable=False, server_default="charge")
        )

    op.create_table(
        "booking_payments",
        sa.Column("booking_id", sa.Uuid(), nullable=False),
        sa.Column("shopper_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=10), nullable=False),
        sa.Column("capture", sa.String(length=10), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "held",
                "paid",
                "released",
                "refunded",
                "canceled",
                name="bookingpaymentstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "provider",
            sa.Enum("sandbox", "stripe", name="paymentprovidername", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("provider_ref", sa.String(length=128), nullable=True),
        sa.Column("client_secret", sa.String(length=256), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("kept_minor", sa.BigInteger(), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.String(length=500), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["bookings.id"],
            name=op.f("fk_booking_payments_booking_id_bookings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["shopper_id"],
            ["shoppers.id"],
            name=op.f("fk_booking_payments_shopper_id_shoppers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_payments")),
        sa.UniqueConstraint("booking_id", name=op.f("uq_booking_payments_booking_id")),
        sa.UniqueConstraint("provider_ref", name=op.f("uq_booking_payments_provider_ref")),
    )


def downgrade() -> None:
    op.drop_table("booking_payments")
    with op.batch_alter_table("consultation_types", schema=None) as batch_op:
        batch_op.drop_column("payment_capture")
    with op.batch_alter_table("payment_refunds", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_payment_refunds_provider_ref"), type_="unique")
        batch_op.drop_column("status_at")
        batch_op.drop_column("failure_reason")
