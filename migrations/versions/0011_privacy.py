"""personal-data requests: exports and erasures

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 20:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TABLE = 'privacy_erasures'


def upgrade():
    op.create_table(TABLE,
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('resident_id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('community_id', sa.BigInteger(), nullable=False),
    sa.Column('pseudonym', sa.String(length=32), nullable=False),
    sa.Column('erased_by', sa.BigInteger(), nullable=True),
    sa.Column('reason_code', sa.String(length=32), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("reason_code IN ('resident_request', 'account_closed', 'deceased', 'moved_away', 'legal_order', 'retention_expired')", name=op.f('ck_privacy_erasures_reason_code')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_erasures')),
    sa.UniqueConstraint('resident_id', name=op.f('uq_privacy_erasures_resident_id'))
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_privacy_erasures_community_id'), ['community_id'], unique=False)
    # An erasure is irreversible and its record permanent: UPDATE and DELETE are refused,
    # like the ledger's append-only tables (0004). The record holds no personal data.
    if op.get_bind().dialect.name == 'postgresql':
        # pointsvc_refuse_change() is created by 0004.
        op.execute(f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
                   "FOR EACH ROW EXECUTE FUNCTION pointsvc_refuse_change()")
    else:
        for operation in ('UPDATE', 'DELETE'):
            op.execute(f"CREATE TRIGGER {TABLE}_no_{operation.lower()} BEFORE {operation} ON {TABLE} "
                       f"BEGIN SELECT RAISE(ABORT, 'append-only table {TABLE}: {operation} refused'); "
                       "END")


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}")
    else:
        for operation in ('update', 'delete'):
            op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_{operation}")
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_privacy_erasures_community_id'))
    op.drop_table(TABLE)
