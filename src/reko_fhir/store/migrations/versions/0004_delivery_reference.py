"""What each delivery target calls the resources it has received (their ids there).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "delivery_reference",
        sa.Column("target", sa.String(64), primary_key=True),
        sa.Column("local", sa.String(200), primary_key=True),
        sa.Column("remote", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("delivery_reference")
