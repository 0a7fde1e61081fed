"""shopper connections

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 10:13:07.208788
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "shopper_connections",
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("shopper_id", sa.Uuid(), nullable=False),
        sa.Column("process_id", sa.String(length=64), nullable=False),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shopper_id"],
            ["shoppers.id"],
            name=op.f("fk_shopper_connections_shopper_id_shoppers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_shopper_connections")),
    )
    with op.batch_alter_table("shopper_connections", schema=None) as batch_op:
        batch_op.create_index("ix_shopper_connections_process_id", ["process_id"], unique=False)
        batch_op.create_index("ix_shopper_connections_shopper_id", ["shopper_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("shopper_connections", schema=None) as batch_op:
        batch_op.drop_index("ix_shopper_connections_shopper_id")
        batch_op.drop_index("ix_shopper_connections_process_id")

    op.drop_table("shopper_connections")
