"""core tables

Revision ID: 0001
Revises:
Create Date: 2026-11-22 09:29:25.196787
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "app_processes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_processes")),
    )
    op.create_table(
        "brands",
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("default_locale", sa.String(length=8), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_brands")),
        sa.UniqueConstraint("slug", name=op.f("uq_brands_slug")),
    )
    op.create_table(
        "shoppers",
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("attributes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("merged_into_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merged_into_id"],
            ["shoppers.id"],
            name=op.f("fk_shoppers_merged_into_id_shoppers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shoppers")),
    )
    with op.batch_alter_table("shoppers", schema=None) as batch_op:
        batch_op.create_index("ix_shoppers_display_name", ["display_name"], unique=False)

    op.create_table(
        "teams",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("name", name=op.f("uq_teams_name")),
    )
    op.create_table(
        "shop_orders",
        sa.Column("shopper_id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column(
            "channel",
            sa.Enum("web", "store", "call", name="orderchannel", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("ordered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("store_name", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shopper_id"],
            ["shoppers.id"],
            name=op.f("fk_shop_orders_shopper_id_shoppers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_orders")),
        sa.UniqueConstraint("external_id", name=op.f("uq_shop_orders_external_id")),
    )
    with op.batch_alter_table("shop_orders", schema=None) as batch_op:
        batch_op.create_index("ix_shop_orders_shopper_time", ["shopper_id", "ordered_at"], unique=False)

    op.create_table(
        "shopper_identities",
        sa.Column("shopper_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("email", "phone", "shop_customer_id", name="identitykind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("value", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shopper_id"],
            ["shoppers.id"],
            name=op.f("fk_shopper_identities_shopper_id_shoppers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shopper_identities")),
        sa.UniqueConstraint("kind", "value", name=op.f("uq_shopper_identities_kind_value")),
    )
    with op.batch_alter_table("shopper_identities", schema=None) as batch_op:
        batch_op.create_index("ix_shopper_identities_shopper_id", ["shopper_id"], unique=False)

    op.create_table(
        "staff",
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column(
            "role",
            sa.Enum("advisor", "supervisor", "admin", name="role", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("display_name", sa.String(length=120), nullable=False),
        sa.Column("bio", sa.Text(), nullable=False),
        sa.Column("photo_url", sa.String(length=500), nullable=False),
        sa.Column("skills", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("languages", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("nominable", sa.Boolean(), nullable=False),
        sa.Column("extra", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_staff_team_id_teams"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_email")),
    )
    op.create_table(
        "advisor_presence",
        sa.Column("staff_id", sa.Uuid(), nullable=False),
        sa.Column(
            "chosen",
            sa.Enum(
                "available", "busy", "away", "offline", name="presencestatus", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "available", "busy", "away", "offline", name="presencestatus", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idle_since", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_advisor_presence_staff_id_staff"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("staff_id", name=op.f("pk_advisor_presence")),
    )
    with op.batch_alter_table("advisor_presence", schema=None) as batch_op:
        batch_op.create_index("ix_advisor_presence_status", ["status", "idle_since"], unique=False)

    op.create_table(
        "audit_log",
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_staff_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_staff_id"],
            ["staff.id"],
            name=op.f("fk_audit_log_actor_staff_id_staff"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_target", ["target_type", "target_id", "at"], unique=False)

    op.create_table(
        "consultations",
        sa.Column("shopper_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("chat", "voice", "video", name="consultationkind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "requested",
                "queued",
                "offered",
                "active",
                "wrap_up",
                "closed",
                "abandoned",
                "missed",
                name="consultationstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("advisor_id", sa.Uuid(), nullable=True),
        sa.Column("nominated_advisor_id", sa.Uuid(), nullable=True),
        sa.Column("skills", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("offered_to_id", sa.Uuid(), nullable=True),
        sa.Column("offer_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("passed_over", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("wait_for_nominated", sa.Boolean(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("shopper_read_seq", sa.Integer(), nullable=False),
        sa.Column("advisor_read_seq", sa.Integer(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("extra", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["advisor_id"], ["staff.id"], name=op.f("fk_consultations_advisor_id_staff"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["nominated_advisor_id"],
            ["staff.id"],
            name=op.f("fk_consultations_nominated_advisor_id_staff"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["offered_to_id"],
            ["staff.id"],
            name=op.f("fk_consultations_offered_to_id_staff"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["shopper_id"],
            ["shoppers.id"],
            name=op.f("fk_consultations_shopper_id_shoppers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultations")),
    )
    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.create_index("ix_consultations_advisor_id", ["advisor_id", "status"], unique=False)
        batch_op.create_index("ix_consultations_offer", ["status", "offer_expires_at"], unique=False)
        batch_op.create_index("ix_consultations_shopper_id", ["shopper_id"], unique=False)
        batch_op.create_index("ix_consultations_status", ["status", "queued_at"], unique=False)

    op.create_table(
        "shop_order_lines",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["shop_orders.id"],
            name=op.f("fk_shop_order_lines_order_id_shop_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_order_lines")),
    )
    with op.batch_alter_table("shop_order_lines", schema=None) as batch_op:
        batch_op.create_index("ix_shop_order_lines_order_id", ["order_id"], unique=False)
        batch_op.create_index("ix_shop_order_lines_sku", ["sku"], unique=False)

    op.create_table(
        "shopper_merges",
        sa.Column("survivor_id", sa.Uuid(), nullable=False),
        sa.Column("merged_id", sa.Uuid(), nullable=False),
        sa.Column("merged_by_staff_id", sa.Uuid(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merged_by_staff_id"],
            ["staff.id"],
            name=op.f("fk_shopper_merges_merged_by_staff_id_staff"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["merged_id"],
            ["shoppers.id"],
            name=op.f("fk_shopper_merges_merged_id_shoppers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["survivor_id"],
            ["shoppers.id"],
            name=op.f("fk_shopper_merges_survivor_id_shoppers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shopper_merges")),
    )
    op.create_table(
        "staff_connections",
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.Uuid(), nullable=False),
        sa.Column("process_id", sa.String(length=64), nullable=False),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_staff_connections_staff_id_staff"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_staff_connections")),
    )
    with op.batch_alter_table("staff_connections", schema=None) as batch_op:
        batch_op.create_index("ix_staff_connections_process_id", ["process_id"], unique=False)
        batch_op.create_index("ix_staff_connections_staff_id", ["staff_id"], unique=False)

    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.Uuid(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.Column("client_ip", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_staff_sessions_staff_id_staff"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_sessions")),
    )
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_staff_sessions_staff_id", ["staff_id"], unique=False)

    op.create_table(
        "chat_files",
        sa.Column("consultation_id", sa.Uuid(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=16), nullable=False),
        sa.Column("uploader_staff_id", sa.Uuid(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultations.id"],
            name=op.f("fk_chat_files_consultation_id_consultations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["uploader_staff_id"],
            ["staff.id"],
            name=op.f("fk_chat_files_uploader_staff_id_staff"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_files")),
    )
    with op.batch_alter_table("chat_files", schema=None) as batch_op:
        batch_op.create_index("ix_chat_files_consultation_id", ["consultation_id"], unique=False)

    op.create_table(
        "messages",
        sa.Column("consultation_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column(
            "sender_kind",
            sa.Enum("shopper", "staff", "system", name="senderkind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("sender_staff_id", sa.Uuid(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "text", "image", "file", "product", "event", name="messagekind", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultations.id"],
            name=op.f("fk_messages_consultation_id_consultations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sender_staff_id"],
            ["staff.id"],
            name=op.f("fk_messages_sender_staff_id_staff"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint(
            "consultation_id",
            "client_id",
            "sender_kind",
            name=op.f("uq_messages_consultation_id_client_id_sender_kind"),
        ),
        sa.UniqueConstraint("consultation_id", "seq", name=op.f("uq_messages_consultation_id_seq")),
    )
    op.create_table(
        "timeline_events",
        sa.Column("shopper_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "profile.created",
                "profile.merged",
                "consultation",
                "message",
                "call",
                "recording",
                "survey",
                "booking",
                "payment",
                "shop.order",
                "store.visit",
                "note",
                name="timelinekind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("actor_staff_id", sa.Uuid(), nullable=True),
        sa.Column("consultation_id", sa.Uuid(), nullable=True),
        sa.Column("ref_id", sa.String(length=64), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_staff_id"],
            ["staff.id"],
            name=op.f("fk_timeline_events_actor_staff_id_staff"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultations.id"],
            name=op.f("fk_timeline_events_consultation_id_consultations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["shopper_id"],
            ["shoppers.id"],
            name=op.f("fk_timeline_events_shopper_id_shoppers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timeline_events")),
    )
    with op.batch_alter_table("timeline_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_timeline_events_shopper_time", ["shopper_id", "occurred_at", "id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("timeline_events", schema=None) as batch_op:
        batch_op.drop_index("ix_timeline_events_shopper_time")

    op.drop_table("timeline_events")
    op.drop_table("messages")
    with op.batch_alter_table("chat_files", schema=None) as batch_op:
        batch_op.drop_index("ix_chat_files_consultation_id")

    op.drop_table("chat_files")
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_staff_sessions_staff_id")

    op.drop_table("staff_sessions")
    with op.batch_alter_table("staff_connections", schema=None) as batch_op:
        batch_op.drop_index("ix_staff_connections_staff_id")
        batch_op.drop_index("ix_staff_connections_process_id")

    op.drop_table("staff_connections")
    op.drop_table("shopper_merges")
    with op.batch_alter_table("shop_order_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_shop_order_lines_sku")
        batch_op.drop_index("ix_shop_order_lines_order_id")

    op.drop_table("shop_order_lines")
    with op.batch_alter_table("consultations", schema=None) as batch_op:
        batch_op.drop_index("ix_consultations_status")
        batch_op.drop_index("ix_consultations_shopper_id")
        batch_op.drop_index("ix_consultations_offer")
        batch_op.drop_index("ix_consultations_advisor_id")

    op.drop_table("consultations")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_target")

    op.drop_table("audit_log")
    with op.batch_alter_table("advisor_presence", schema=None) as batch_op:
        batch_op.drop_index("ix_advisor_presence_status")

    op.drop_table("advisor_presence")
    op.drop_table("staff")
    with op.batch_alter_table("shopper_identities", schema=None) as batch_op:
        batch_op.drop_index("ix_shopper_identities_shopper_id")

    op.drop_table("shopper_identities")
    with op.batch_alter_table("shop_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_shop_orders_shopper_time")

    op.drop_table("shop_orders")
    op.drop_table("teams")
    with op.batch_alter_table("shoppers", schema=None) as batch_op:
        batch_op.drop_index("ix_shoppers_display_name")

    op.drop_table("shoppers")
    op.drop_table("brands")
    op.drop_table("app_processes")
