"""the journal's filters, counted together (PostgreSQL)

`cdgi log` asks for the newest 50 rows of a combination: a partner's refusals, a type's
duplicates, a partner's messages of one type. PostgreSQL estimates such a combination by
multiplying each filter's share, as if they were independent; they are not (a type comes
from one side, a refusal goes to whoever sent the message). Believing 1,400 of a partner's
refusals were spread through the status index, it walked the index back through all 20,000
refusals of a million rows for none (101 ms). With the combinations counted by ANALYZE
(extended statistics, most-common-value lists) it knows the combination is absent or rare,
intersects two indexes and sorts the few rows (40 ms).

Statistics only: nothing is written per row, so the daemon's inserts cost the same; ANALYZE
(autovacuum's, or the operator's) fills them, and this migration's for a journal that holds
rows. SQLite has no such statistics: nothing to do.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# (name, columns, statistics target or None for the default). A type's combinations with the
# parties outnumber the default 100 most-common values when many insurers and customs
# offices trade every type, hence 400 (ANALYZE samples 120,000 rows instead of 30,000).
STATISTICS = [
    ("journal_status_parties", "status, direction, sender_id, receiver_id", None),
    ("journal_type_parties", "message_type, direction, sender_id, receiver_id", 400),
    ("journal_type_status", "message_type, status", None),
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, columns, target in STATISTICS:
        op.execute(f"CREATE STATISTICS IF NOT EXISTS {name} (mcv) ON {columns} FROM journal")
        if target:
            op.execute(f"ALTER STATISTICS {name} SET STATISTICS {target}")
    # An empty journal is left unanalysed. Analysed, it is known to be empty (no longer of
    # unknown size), and every plan made before autovacuum analyses it again reads it by a
    # sequential scan: the foreign-key checks of each journal event, outbox and inbox row
    # among them, cached per connection, walked the whole journal as it grew (PostgreSQL's
    # share of a fresh store's work doubled).
    if op.get_bind().exec_driver_sql("SELECT EXISTS (SELECT 1 FROM journal)").scalar():
        op.execute("ANALYZE journal")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, _, _ in STATISTICS:
        op.execute(f"DROP STATISTICS IF EXISTS {name}")
