"""people: one household label per community

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 09:00:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('households', schema=None) as batch_op:
        batch_op.create_unique_constraint(
            batch_op.f('uq_households_community_id_label'), ['community_id', 'label']
        )


def downgrade():
    with op.batch_alter_table('households', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_households_community_id_label'), type_='unique')
