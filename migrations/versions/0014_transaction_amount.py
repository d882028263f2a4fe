"""ledger_transactions.amount (points moved, derived) and (community_id, id) index

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 01:00:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

# The sum of each transaction's positive entries, filled in from the entries once.
BACKFILL = """
UPDATE ledger_transactions SET amount = (
    SELECT COALESCE(SUM(e.amount), 0) FROM ledger_entries e
    WHERE e.transaction_id = ledger_transactions.id AND e.amount > 0)
"""
SQLITE_REFUSE_UPDATE = (
    "CREATE TRIGGER ledger_transactions_no_update BEFORE UPDATE ON ledger_transactions "
    "BEGIN SELECT RAISE(ABORT, 'append-only table ledger_transactions: UPDATE refused'); END"
)


def upgrade():
    # The amount is derived from the hashed entries and kept beside the hashed header (the
    # canonical form does not change); `flask ledger check` holds it to the entries. Audit
    # searches filter and total on it, and the export reads it, without touching entries.
    # The table is append-only: the one backfill runs with its update trigger lifted.
    if op.get_bind().dialect.name == "postgresql":
        op.add_column("ledger_transactions", sa.Column("amount", sa.BigInteger(), nullable=True))
        op.execute("ALTER TABLE ledger_transactions DISABLE TRIGGER ledger_transactions_append_only")
        op.execute(BACKFILL)
        op.execute("ALTER TABLE ledger_transactions ENABLE TRIGGER ledger_transactions_append_only")
        op.alter_column("ledger_transactions", "amount", nullable=False)
    else:
        # SQLite adds a NOT NULL column only with a default; every insert names the amount.
        op.add_column("ledger_transactions", sa.Column(
            "amount", sa.BigInteger(), nullable=False, server_default="0"))
        op.execute("DROP TRIGGER ledger_transactions_no_update")
        op.execute(BACKFILL)
        op.execute(SQLITE_REFUSE_UPDATE)
    # A community's postings newest first: audit pages scoped to one community (with a kind,
    # say) walk this instead of the whole primary key.
    op.create_index("ix_ledger_transactions_community_id_id", "ledger_transactions",
                    ["community_id", "id"])


def downgrade():
    op.drop_index("ix_ledger_transactions_community_id_id", table_name="ledger_transactions")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_column("ledger_transactions", "amount")
        return
    # SQLite drops a column without rebuilding the table (3.35+), so the triggers survive.
    op.execute("ALTER TABLE ledger_transactions DROP COLUMN amount")
