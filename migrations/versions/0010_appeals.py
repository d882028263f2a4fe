"""appeals (monthly statements read the ledger and need no table)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 20:00:00

Not append-only: an appeal's reason is the resident's own text and must be blankable by
an erasure, so no triggers here.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table('appeals',
    sa.Column('id', _ID, nullable=False),
    sa.Column('community_id', _ID, nullable=False),
    sa.Column('resident_id', _ID, nullable=False),
    sa.Column('subject_type', sa.String(length=16), nullable=False),
    sa.Column('subject_key', sa.String(length=64), nullable=False),
    sa.Column('transaction_id', _ID, nullable=True),
    sa.Column('event_id', _ID, nullable=True),
    sa.Column('decided_originally_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('filed_by', _ID, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reviewer_user_id', _ID, nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('remedy_transaction_id', _ID, nullable=True),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('open', 'upheld', 'dismissed')", name=op.f('ck_appeals_status')),
    sa.CheckConstraint("subject_type IN ('deduction', 'attendance')", name=op.f('ck_appeals_subject_type')),
    sa.ForeignKeyConstraint(['community_id'], ['org_nodes.id'], name=op.f('fk_appeals_community_id_org_nodes')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_appeals_resident_id_residents')),
    sa.ForeignKeyConstraint(['transaction_id'], ['ledger_transactions.id'], name=op.f('fk_appeals_transaction_id_ledger_transactions')),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_appeals_event_id_events')),
    sa.ForeignKeyConstraint(['filed_by'], ['users.id'], name=op.f('fk_appeals_filed_by_users')),
    sa.ForeignKeyConstraint(['reviewer_user_id'], ['users.id'], name=op.f('fk_appeals_reviewer_user_id_users')),
    sa.ForeignKeyConstraint(['remedy_transaction_id'], ['ledger_transactions.id'], name=op.f('fk_appeals_remedy_transaction_id_ledger_transactions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appeals')),
    sa.UniqueConstraint('subject_type', 'subject_key', name=op.f('uq_appeals_subject_type_subject_key')),
    )
    with op.batch_alter_table('appeals', schema=None) as batch_op:
        batch_op.create_index('ix_appeals_community_id_status_id', ['community_id', 'status', 'id'], unique=False)
        batch_op.create_index('ix_appeals_resident_id_id', ['resident_id', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('appeals', schema=None) as batch_op:
        batch_op.drop_index('ix_appeals_resident_id_id')
        batch_op.drop_index('ix_appeals_community_id_status_id')
    op.drop_table('appeals')
