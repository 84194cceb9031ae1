"""initial tables

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credit",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("customs_code", sa.String(length=10), nullable=False),
        sa.Column("rating", sa.String(length=16), nullable=False),
        sa.Column("rated_date", sa.Date(), nullable=False),
        sa.Column("records", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("uscc"),
    )
    op.create_table(
        "enterprise",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("customs_code", sa.String(length=10), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("uscc"),
    )
    op.create_table(
        "journal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=True),
        sa.Column("message_type", sa.String(length=16), nullable=True),
        sa.Column("sender_id", sa.String(length=32), nullable=True),
        sa.Column("receiver_id", sa.String(length=32), nullable=True),
        sa.Column("correlation_id", sa.String(length=64), nullable=True),
        sa.Column("uscc", sa.String(length=18), nullable=True),
        sa.Column("routing_key", sa.String(length=255), nullable=True),
        sa.Column("digest", sa.String(length=64), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("canonical", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("code", sa.String(length=4), nullable=True),
        sa.Column("info", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("journal", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_journal_correlation_id"), ["correlation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_journal_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_journal_message_id"), ["message_id"], unique=False)
        batch_op.create_index(
            "ix_journal_receiver_created", ["receiver_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_journal_sender_created", ["sender_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_journal_status_created", ["status", "created_at"], unique=False)
        batch_op.create_index(
            "ix_journal_type_created", ["message_type", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_journal_uscc"), ["uscc"], unique=False)

    op.create_table(
        "partner",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("dialect", sa.String(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("broker_user", sa.String(length=64), nullable=True),
        sa.Column("allow_sha1_until", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "bound_card",
        sa.Column("card_no", sa.String(length=32), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["uscc"],
            ["enterprise.uscc"],
        ),
        sa.PrimaryKeyConstraint("card_no"),
    )
    with op.batch_alter_table("bound_card", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bound_card_uscc"), ["uscc"], unique=False)

    op.create_table(
        "inbox",
        sa.Column("sender_key", sa.String(length=64), nullable=False),
        sa.Column("message_key", sa.String(length=80), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("journal_id", sa.Integer(), nullable=False),
        sa.Column("receipt_outbox_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["journal_id"],
            ["journal.id"],
        ),
        sa.PrimaryKeyConstraint("sender_key", "message_key"),
    )
    op.create_table(
        "journal_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("journal_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stage", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("code", sa.String(length=4), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["journal_id"],
            ["journal.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("journal_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_journal_event_journal_id"), ["journal_id"], unique=False
        )

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("journal_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("message_type", sa.String(length=16), nullable=False),
        sa.Column("receiver_id", sa.String(length=32), nullable=False),
        sa.Column("correlation_id", sa.String(length=64), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["journal_id"],
            ["journal.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_journal_id"), ["journal_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_message_id"), ["message_id"], unique=False)
        batch_op.create_index("ix_outbox_state_next", ["state", "next_attempt_at"], unique=False)

    op.create_table(
        "partner_cert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("pem", sa.Text(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partner.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("partner_id", "fingerprint"),
    )
    with op.batch_alter_table("partner_cert", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_partner_cert_partner_id"), ["partner_id"], unique=False
        )

    op.create_table(
        "seal",
        sa.Column("seal_id", sa.String(length=64), nullable=False),
        sa.Column("card_no", sa.String(length=32), nullable=False),
        sa.Column("holder_name", sa.String(length=100), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_no"],
            ["bound_card.card_no"],
        ),
        sa.PrimaryKeyConstraint("seal_id"),
    )
    with op.batch_alter_table("seal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_seal_card_no"), ["card_no"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("seal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_seal_card_no"))

    op.drop_table("seal")
    with op.batch_alter_table("partner_cert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_cert_partner_id"))

    op.drop_table("partner_cert")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_state_next")
        batch_op.drop_index(batch_op.f("ix_outbox_message_id"))
        batch_op.drop_index(batch_op.f("ix_outbox_journal_id"))

    op.drop_table("outbox")
    with op.batch_alter_table("journal_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_journal_event_journal_id"))

    op.drop_table("journal_event")
    op.drop_table("inbox")
    with op.batch_alter_table("bound_card", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bound_card_uscc"))

    op.drop_table("bound_card")
    op.drop_table("partner")
    with op.batch_alter_table("journal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_journal_uscc"))
        batch_op.drop_index("ix_journal_type_created")
        batch_op.drop_index("ix_journal_status_created")
        batch_op.drop_index("ix_journal_sender_created")
        batch_op.drop_index("ix_journal_receiver_created")
        batch_op.drop_index(batch_op.f("ix_journal_message_id"))
        batch_op.drop_index(batch_op.f("ix_journal_created_at"))
        batch_op.drop_index(batch_op.f("ix_journal_correlation_id"))

    op.drop_table("journal")
    op.drop_table("enterprise")
    op.drop_table("credit")
