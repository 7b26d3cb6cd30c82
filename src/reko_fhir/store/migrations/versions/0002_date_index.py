"""Date search: a row per date value, as the range of instants it covers.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "date_index",
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("param", sa.String(64), nullable=False),
        sa.Column("low", sa.DateTime(timezone=True), nullable=False),
        sa.Column("high", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_date_lookup", "date_index", ["type", "param", "low", "high"])
    op.create_index("ix_date_owner", "date_index", ["type", "id"])


def downgrade() -> None:
    op.drop_table("date_index")
