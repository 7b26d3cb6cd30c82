"""PostgreSQL: autovacuum the tables searches read after every 10,000 inserted rows, not 20 %.

A search naming one Patient reads its matches' partitions, count and order from
``ix_reference_lookup`` alone (0010), an index-only scan; but a row is read from the index alone
only once VACUUM has marked its heap page all-visible. Until then every match costs a look-up
of its heap page as well: the rows the API writes land one or two to a page among other writes,
so a patient's 1,100 new Procedures were 2,200 page reads for the count and the page instead
of about 140 (1 ms instead of 0.4 ms at 1,000,000 Procedures). By default autovacuum waits for
20 % of a table to be inserted anew (200,000 rows of a million) before it vacuums for inserts;
a vacuum after inserts only reads the pages changed since the last one, so a fixed threshold
keeps its cost small as well as the rows visible soon.

These are storage parameters of the tables: autovacuum itself must be on (the default). SQLite
has no such thing: nothing to do there.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
TABLES = ("resource_current", "token_index", "reference_index", "date_index", "number_index")
SETTINGS = {
    "autovacuum_vacuum_insert_scale_factor": "0",
    "autovacuum_vacuum_insert_threshold": "10000",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    values = ", ".join(f"{name} = {value}" for name, value in SETTINGS.items())
    for name in TABLES:
        op.execute(f"ALTER TABLE {name} SET ({values})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in TABLES:
        op.execute(f"ALTER TABLE {name} RESET ({', '.join(SETTINGS)})")
