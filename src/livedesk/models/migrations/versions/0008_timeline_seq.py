"""consultations.timeline_seq: how far a consultation's messages are on the timeline

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 15:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timeline_seq", sa.Integer(), nullable=False, server_default="0"))
    # Until now every message got its timeline line in its own transaction: all are there.
    op.execute("UPDATE consultations SET timeline_seq = last_seq")


def downgrade() -> None:
    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.drop_column("timeline_seq")
