"""merchants: who created a merchant and who last changed its status, and when

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 10:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('created_by', BigId, nullable=True))
        batch_op.add_column(sa.Column('status_changed_by', BigId, nullable=True))
        batch_op.add_column(
            sa.Column('status_changed_at', sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f('fk_merchants_created_by_users'), 'users', ['created_by'], ['id']
        )
        batch_op.create_foreign_key(
            batch_op.f('fk_merchants_status_changed_by_users'),
            'users',
            ['status_changed_by'],
            ['id'],
        )


def downgrade():
    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('fk_merchants_status_changed_by_users'), type_='foreignkey'
        )
        batch_op.drop_constraint(batch_op.f('fk_merchants_created_by_users'), type_='foreignkey')
        batch_op.drop_column('status_changed_at')
        batch_op.drop_column('status_changed_by')
        batch_op.drop_column('created_by')
