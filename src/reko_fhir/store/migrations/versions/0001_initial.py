"""The first schema: versions, current resources, search indexes, conditional creates.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def _resource_columns(*, versioned: bool) -> list[sa.Column[object]]:
    columns: list[sa.Column[object]] = [
        sa.Column("type", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
    ]
    if versioned:
        columns.append(sa.Column("version", sa.Integer, primary_key=True))
    else:
        columns.append(sa.Column("version", sa.Integer, nullable=False))
    columns += [
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("content", sa.Text, nullable=True),
    ]
    return columns


def upgrade() -> None:
    op.create_table("resource_version", *_resource_columns(versioned=True))
    op.create_table("resource_current", *_resource_columns(versioned=False))
    op.create_index("ix_current_last_updated", "resource_current", ["type", "last_updated"])
    op.create_table(
        "token_index",
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("param", sa.String(64), nullable=False),
        sa.Column("system", sa.String(256), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
    )
    op.create_index("ix_token_lookup", "token_index", ["type", "param", "value", "system"])
    op.create_index("ix_token_owner", "token_index", ["type", "id"])
    op.create_table(
        "reference_index",
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("param", sa.String(64), nullable=False),
        sa.Column("target", sa.String(256), nullable=False),
    )
    op.create_index("ix_reference_lookup", "reference_index", ["type", "param", "target"])
    op.create_index("ix_reference_owner", "reference_index", ["type", "id"])
    op.create_table(
        "conditional_create",
        sa.Column("type", sa.String(64), primary_key=True),
        sa.Column("query", sa.String(512), primary_key=True),
        sa.Column("id", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "conditional_create",
        "reference_index",
        "token_index",
        "resource_current",
        "resource_version",
    ):
        op.drop_table(table)
