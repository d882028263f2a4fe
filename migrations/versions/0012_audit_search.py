"""indexes for audit searches over the ledger

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 20:00:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    # Rule-code searches page in id order without a sort; the other audit filters reuse
    # existing indexes (resident, actor, reference, community+created_at, entries by account).
    op.create_index("ix_ledger_transactions_rule_code_id", "ledger_transactions",
                    ["rule_code", "id"])
    # Time windows across a district: BRIN on PostgreSQL (the table is append-only, so
    # created_at follows the physical order; a few pages, almost free on insert); a plain
    # index on SQLite, which has no BRIN.
    op.create_index("ix_ledger_transactions_created_at_brin", "ledger_transactions",
                    ["created_at"], postgresql_using="brin")


def downgrade():
    op.drop_index("ix_ledger_transactions_created_at_brin", table_name="ledger_transactions")
    op.drop_index("ix_ledger_transactions_rule_code_id", table_name="ledger_transactions")
