"""audit action log: append-only, before/after values

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 20:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# audit_events has been append-only since 0004 (its UPDATE/DELETE triggers are made there).
# Plain ALTER TABLE ... ADD COLUMN and CREATE INDEX keep those triggers on both backends; a
# batch (copy-and-move) alteration on SQLite would drop them, so none is used here.


def upgrade():
    op.add_column('audit_events', sa.Column('before_values', sa.Text(), nullable=True))
    op.add_column('audit_events', sa.Column('after_values', sa.Text(), nullable=True))
    op.create_index('ix_audit_events_target', 'audit_events', ['target_type', 'target_id'],
                    unique=False)
    op.create_index('ix_audit_events_action', 'audit_events', ['action'], unique=False)


def downgrade():
    op.drop_index('ix_audit_events_action', table_name='audit_events')
    op.drop_index('ix_audit_events_target', table_name='audit_events')
    # Dropping a column is a table rebuild on older SQLite; the drop keeps the triggers on
    # SQLite >= 3.35 (native DROP COLUMN) and on PostgreSQL.
    op.drop_column('audit_events', 'after_values')
    op.drop_column('audit_events', 'before_values')
