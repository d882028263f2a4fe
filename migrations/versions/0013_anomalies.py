"""anomalies: refused check-ins and detector support

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 20:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    # Refused geofence check-ins: distance only, never coordinates. No append-only trigger:
    # a resident's erasure deletes their rows.
    op.create_table('anomaly_geofence_refusals',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('resident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('step', sa.BigInteger(), nullable=True),
    sa.Column('distance_m', sa.Integer(), nullable=True),
    sa.Column('radius_m', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_anomaly_geofence_refusals_event_id_events')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_anomaly_geofence_refusals_resident_id_residents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_anomaly_geofence_refusals')),
    sa.UniqueConstraint('event_id', 'resident_id', 'direction', 'step', name='uq_anomaly_geofence_refusals_scan')
    )
    with op.batch_alter_table('anomaly_geofence_refusals', schema=None) as batch_op:
        batch_op.create_index('ix_anomaly_geofence_refusals_at', ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_anomaly_geofence_refusals_resident_id'), ['resident_id'], unique=False)

    # Merchant volumes over a window (no existing index has captured_at).
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.create_index('ix_redemptions_merchant_id_captured_at', ['merchant_id', 'captured_at'], unique=False)


def downgrade():
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.drop_index('ix_redemptions_merchant_id_captured_at')

    with op.batch_alter_table('anomaly_geofence_refusals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_anomaly_geofence_refusals_resident_id'))
        batch_op.drop_index('ix_anomaly_geofence_refusals_at')

    op.drop_table('anomaly_geofence_refusals')
