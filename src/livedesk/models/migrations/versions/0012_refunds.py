"""payment_refunds as a lifecycle: one row per provider refund (unique provider_ref), the
provider's failure reason, and when the current status was learnt

Revision ID: 0012_refunds
Revises: 0011
Create Date: 2026-12-07 01:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_refunds"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch_alter_table: SQLite rebuilds the table to add the unique constraint.
    with op.batch_alter_table("payment_refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failure_reason", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("status_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(op.f("uq_payment_refunds_provider_ref"), ["provider_ref"])


def downgrade() -> None:
    with op.batch_alter_table("payment_refunds", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_payment_refunds_provider_ref"), type_="unique")
        batch_op.drop_column("status_at")
        batch_op.drop_column("failure_reason")
