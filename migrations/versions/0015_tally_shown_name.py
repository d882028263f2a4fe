"""leaderboard_tallies.shown_name: the masked name a board shows, kept by the drainer

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 15:30:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

# The masked name (张*明) of every listed public resident, NULL for anonymous and unlisted
# rows: the rule of pointsvc.common.mask_name as it stands at this revision, in SQL that
# PostgreSQL and SQLite (3.33+, UPDATE … FROM) both run. Display names are at most 100
# characters, so 98 stars are enough for any middle.
STARS = "*" * 98
MASKED = f"""
CASE WHEN r.is_minor OR r.privacy <> 'public' THEN NULL
     WHEN u.display_name IS NULL THEN ''
     WHEN length(u.display_name) <= 1 THEN u.display_name
     WHEN length(u.display_name) = 2 THEN substr(u.display_name, 1, 1) || '*'
     ELSE substr(u.display_name, 1, 1) || substr('{STARS}', 1, length(u.display_name) - 2)
          || substr(u.display_name, length(u.display_name), 1)
END"""
BACKFILL = f"""
UPDATE leaderboard_tallies AS t SET shown_name = {MASKED}
FROM residents r JOIN users u ON u.id = r.user_id
WHERE r.id = t.resident_id
"""


def upgrade():
    # Boards read the name from the tally row itself instead of joining residents and users
    # for every row shown (~100 random lookups per page on a district of a million).
    with op.batch_alter_table('leaderboard_tallies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shown_name', sa.String(length=100), nullable=True))
    op.execute(BACKFILL)


def downgrade():
    with op.batch_alter_table('leaderboard_tallies', schema=None) as batch_op:
        batch_op.drop_column('shown_name')
