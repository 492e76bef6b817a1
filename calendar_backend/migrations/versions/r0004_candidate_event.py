"""The candidate's own invite: the id of the second Outlook event of a booking.

Revision ID: r0004
Revises: r0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0004"
down_revision: str | None = "r0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``interviews.candidate_event_id`` (NULL: the candidate was an attendee of the one event)."""
    with op.batch_alter_table("interviews") as batch:
        batch.add_column(sa.Column("candidate_event_id", sa.String(512), nullable=True))


def downgrade() -> None:
    """Drop ``interviews.candidate_event_id``."""
    with op.batch_alter_table("interviews") as batch:
        batch.drop_column("candidate_event_id")
