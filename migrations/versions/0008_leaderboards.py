"""leaderboards: tallies, score histograms, tally outbox, badges, badge grants, designations

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 16:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
LEVELS = ('district', 'street', 'community', 'grid')
METRICS = ('points', 'minutes')


def upgrade():
    op.create_table('leaderboard_tallies',
    sa.Column('resident_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('minutes', sa.BigInteger(), nullable=False),
    sa.Column('listed', sa.Boolean(), nullable=False),
    sa.Column('district_id', sa.BigInteger(), nullable=False),
    sa.Column('street_id', sa.BigInteger(), nullable=False),
    sa.Column('community_id', sa.BigInteger(), nullable=False),
    sa.Column('grid_id', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('resident_id', 'period', 'category', name=op.f('pk_leaderboard_tallies'))
    )
    with op.batch_alter_table('leaderboard_tallies', schema=None) as batch_op:
        for level in LEVELS:
            for metric in METRICS:
                # minutes indexes are partial: only rows with service hours are on hours boards
                where = sa.text('minutes > 0') if metric == 'minutes' else None
                batch_op.create_index(f'ix_leaderboard_tallies_{level}_{metric}',
                                      [f'{level}_id', 'period', 'category', 'listed', metric,
                                       'resident_id'], unique=False,
                                      postgresql_where=where, sqlite_where=where)

    op.create_table('leaderboard_score_counts',
    sa.Column('node_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('metric', sa.String(length=8), nullable=False),
    sa.Column('score', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('residents', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('node_id', 'period', 'category', 'metric', 'score', name=op.f('pk_leaderboard_score_counts'))
    )
    op.create_table('leaderboard_outbox',
    sa.Column('transaction_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('transaction_id', name=op.f('pk_leaderboard_outbox'))
    )
    op.create_table('leaderboard_relist',
    sa.Column('resident_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('resident_id', name=op.f('pk_leaderboard_relist'))
    )
    op.create_table('honour_badges',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('org_node_id', BIG_ID, nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('title_zh', sa.String(length=100), nullable=False),
    sa.Column('title_en', sa.String(length=200), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('rule_code', sa.String(length=64), nullable=True),
    sa.Column('category', sa.String(length=16), nullable=True),
    sa.Column('metric', sa.String(length=8), nullable=False),
    sa.Column('threshold', sa.BigInteger(), nullable=False),
    sa.Column('period', sa.String(length=8), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by', BIG_ID, nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("metric IN ('actions', 'points', 'hours')", name=op.f('ck_honour_badges_metric')),
    sa.CheckConstraint("period IN ('week', 'month', 'year', 'all')", name=op.f('ck_honour_badges_period')),
    sa.CheckConstraint('threshold > 0', name=op.f('ck_honour_badges_threshold_positive')),
    sa.CheckConstraint('rule_code IS NOT NULL OR category IS NOT NULL', name=op.f('ck_honour_badges_has_subject')),
    sa.ForeignKeyConstraint(['org_node_id'], ['org_nodes.id'], name=op.f('fk_honour_badges_org_node_id_org_nodes')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_honour_badges_created_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_honour_badges')),
    sa.UniqueConstraint('org_node_id', 'code', name=op.f('uq_honour_badges_org_node_id_code'))
    )
    with op.batch_alter_table('honour_badges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_honour_badges_org_node_id'), ['org_node_id'], unique=False)

    op.create_table('honour_badge_grants',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('badge_id', BIG_ID, nullable=False),
    sa.Column('resident_id', BIG_ID, nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('transaction_id', sa.BigInteger(), nullable=True),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['badge_id'], ['honour_badges.id'], name=op.f('fk_honour_badge_grants_badge_id_honour_badges')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_honour_badge_grants_resident_id_residents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_honour_badge_grants')),
    sa.UniqueConstraint('badge_id', 'resident_id', name=op.f('uq_honour_badge_grants_badge_id_resident_id'))
    )
    with op.batch_alter_table('honour_badge_grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_honour_badge_grants_resident_id'), ['resident_id'], unique=False)

    op.create_table('honour_designations',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('resident_id', BIG_ID, nullable=False),
    sa.Column('community_id', BIG_ID, nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('citation', sa.Text(), nullable=False),
    sa.Column('period_label', sa.String(length=32), nullable=True),
    sa.Column('designated_by', BIG_ID, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['org_nodes.id'], name=op.f('fk_honour_designations_community_id_org_nodes')),
    sa.ForeignKeyConstraint(['designated_by'], ['users.id'], name=op.f('fk_honour_designations_designated_by_users')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_honour_designations_resident_id_residents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_honour_designations'))
    )
    with op.batch_alter_table('honour_designations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_honour_designations_resident_id'), ['resident_id'], unique=False)


def downgrade():
    with op.batch_alter_table('honour_designations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_honour_designations_resident_id'))
    op.drop_table('honour_designations')
    with op.batch_alter_table('honour_badge_grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_honour_badge_grants_resident_id'))
    op.drop_table('honour_badge_grants')
    with op.batch_alter_table('honour_badges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_honour_badges_org_node_id'))
    op.drop_table('honour_badges')
    op.drop_table('leaderboard_relist')
    op.drop_table('leaderboard_outbox')
    op.drop_table('leaderboard_score_counts')
    with op.batch_alter_table('leaderboard_tallies', schema=None) as batch_op:
        for level in LEVELS:
            for metric in METRICS:
                batch_op.drop_index(f'ix_leaderboard_tallies_{level}_{metric}')
    op.drop_table('leaderboard_tallies')
