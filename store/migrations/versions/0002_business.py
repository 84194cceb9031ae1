"""business state

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agreement',
    sa.Column('agreement_no', sa.String(length=50), nullable=False),
    sa.Column('uscc', sa.String(length=18), nullable=False),
    sa.Column('bank_code', sa.String(length=16), nullable=False),
    sa.Column('customs_district', sa.String(length=4), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('agreement_no')
    )
    with op.batch_alter_table('agreement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agreement_uscc'), ['uscc'], unique=False)

    op.create_table('authorization',
    sa.Column('auth_no', sa.String(length=50), nullable=False),
    sa.Column('uscc', sa.String(length=18), nullable=False),
    sa.Column('insurer_code', sa.String(length=16), nullable=False),
    sa.Column('scopes', sa.String(length=200), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('auth_no')
    )
    with op.batch_alter_table('authorization', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authorization_uscc'), ['uscc'], unique=False)

    op.create_table('claim',
    sa.Column('claim_no', sa.String(length=50), nullable=False),
    sa.Column('policy_no', sa.String(length=50), nullable=False),
    sa.Column('guarantee_record_no', sa.String(length=50), nullable=False),
    sa.Column('uscc', sa.String(length=18), nullable=False),
    sa.Column('insurer_code', sa.String(length=16), nullable=False),
    sa.Column('cause', sa.String(length=16), nullable=False),
    sa.Column('entries', sa.Text(), nullable=False),
    sa.Column('total', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('notice_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('paid_amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('paid_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('claim_no')
    )
    with op.batch_alter_table('claim', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claim_policy_no'), ['policy_no'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_uscc'), ['uscc'], unique=False)

    op.create_table('increase',
    sa.Column('increase_no', sa.String(length=50), nullable=False),
    sa.Column('quota_no', sa.String(length=50), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('approved_amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('increase_no')
    )
    with op.batch_alter_table('increase', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_increase_quota_no'), ['quota_no'], unique=False)

    op.create_table('ledger_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('guarantee_record_no', sa.String(length=50), nullable=False),
    sa.Column('policy_no', sa.String(length=50), nullable=False),
    sa.Column('entry_id', sa.String(length=18), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('declaration_type', sa.String(length=4), nullable=True),
    sa.Column('customs_district', sa.String(length=4), nullable=True),
    sa.Column('tax_items', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('available_after', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('discrepancy', sa.String(length=4), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entry_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entry_guarantee_record_no'), ['guarantee_record_no'], unique=False)

    op.create_table('policy',
    sa.Column('apply_no', sa.String(length=50), nullable=False),
    sa.Column('policy_no', sa.String(length=50), nullable=True),
    sa.Column('quota_no', sa.String(length=50), nullable=False),
    sa.Column('uscc', sa.String(length=18), nullable=False),
    sa.Column('insurer_code', sa.String(length=16), nullable=False),
    sa.Column('insured_amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('term_start', sa.Date(), nullable=False),
    sa.Column('term_end', sa.Date(), nullable=False),
    sa.Column('insured_customs', sa.String(length=200), nullable=False),
    sa.Column('coverage', sa.String(length=200), nullable=False),
    sa.Column('invoice', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('premium', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('rate', sa.Numeric(precision=12, scale=6), nullable=True),
    sa.Column('epolicy_file_name', sa.String(length=255), nullable=True),
    sa.Column('epolicy_media_type', sa.String(length=64), nullable=True),
    sa.Column('epolicy_sha256', sa.String(length=64), nullable=True),
    sa.Column('epolicy_content', sa.LargeBinary(), nullable=True),
    sa.Column('guarantee_record_no', sa.String(length=50), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('apply_no'),
    sa.UniqueConstraint('guarantee_record_no'),
    sa.UniqueConstraint('policy_no')
    )
    with op.batch_alter_table('policy', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_policy_quota_no'), ['quota_no'], unique=False)
        batch_op.create_index('ix_policy_status_term_end', ['status', 'term_end'], unique=False)
        batch_op.create_index(batch_op.f('ix_policy_uscc'), ['uscc'], unique=False)

    op.create_table('progress',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uscc', sa.String(length=18), nullable=False),
    sa.Column('subject', sa.String(length=16), nullable=False),
    sa.Column('subject_no', sa.String(length=50), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('message_id', sa.String(length=64), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('progress', schema=None) as batch_op:
        batch_op.create_index('ix_progress_subject', ['subject', 'subject_no'], unique=False)
        batch_op.create_index(batch_op.f('ix_progress_uscc'), ['uscc'], unique=False)

    op.create_table('quota',
    sa.Column('quota_no', sa.String(length=50), nullable=False),
    sa.Column('uscc', sa.String(length=18), nullable=False),
    sa.Column('insurer_code', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('applied_amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('term_start', sa.Date(), nullable=False),
    sa.Column('term_end', sa.Date(), nullable=False),
    sa.Column('prev_quota_no', sa.String(length=50), nullable=True),
    sa.Column('contact_name', sa.String(length=100), nullable=True),
    sa.Column('contact_phone', sa.String(length=30), nullable=True),
    sa.Column('approved_amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('rate', sa.Numeric(precision=12, scale=6), nullable=True),
    sa.Column('valid_from', sa.Date(), nullable=True),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('quota_no')
    )
    with op.batch_alter_table('quota', schema=None) as batch_op:
        batch_op.create_index('ix_quota_status_valid_to', ['status', 'valid_to'], unique=False)
        batch_op.create_index(batch_op.f('ix_quota_uscc'), ['uscc'], unique=False)

    with op.batch_alter_table('bound_card', schema=None) as batch_op:
        batch_op.add_column(sa.Column('permissions', sa.String(length=200), nullable=False, server_default=''))



def downgrade() -> None:
    with op.batch_alter_table('bound_card', schema=None) as batch_op:
        batch_op.drop_column('permissions')

    with op.batch_alter_table('quota', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quota_uscc'))
        batch_op.drop_index('ix_quota_status_valid_to')

    op.drop_table('quota')
    with op.batch_alter_table('progress', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_progress_uscc'))
        batch_op.drop_index('ix_progress_subject')

    op.drop_table('progress')
    with op.batch_alter_table('policy', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_policy_uscc'))
        batch_op.drop_index('ix_policy_status_term_end')
        batch_op.drop_index(batch_op.f('ix_policy_quota_no'))

    op.drop_table('policy')
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entry_guarantee_record_no'))
        batch_op.drop_index(batch_op.f('ix_ledger_entry_entry_id'))

    op.drop_table('ledger_entry')
    with op.batch_alter_table('increase', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_increase_quota_no'))

    op.drop_table('increase')
    with op.batch_alter_table('claim', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_claim_uscc'))
        batch_op.drop_index(batch_op.f('ix_claim_policy_no'))

    op.drop_table('claim')
    with op.batch_alter_table('authorization', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authorization_uscc'))

    op.drop_table('authorization')
    with op.batch_alter_table('agreement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agreement_uscc'))

    op.drop_table('agreement')
