"""The append-only patient-data access log (AuditEvent) and the patients each event names.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("recorded", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(1), nullable=False),
        sa.Column("outcome", sa.String(2), nullable=False),
        sa.Column("agent", sa.String(128), nullable=False),
        sa.Column("unit", sa.String(128), nullable=True),
        sa.Column("content", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_recorded", "audit_event", ["recorded"])
    op.create_index("ix_audit_unit", "audit_event", ["unit", "recorded"])
    op.create_table(
        "audit_patient",
        sa.Column("audit_id", sa.String(64), nullable=False),
        sa.Column("patient", sa.String(128), nullable=False),
    )
    op.create_index("ix_audit_patient", "audit_patient", ["patient", "audit_id"])


def downgrade() -> None:
    op.drop_table("audit_patient")
    op.drop_table("audit_event")
