"""answering hours, on-call contacts, escalation, push subscriptions

Revision ID: d3c0f3000003
Revises: d2b0f2000002
"""

from collections.abc import Sequence

revision: str = "d3c0f3000003"
down_revision: str | None = "d2b0f2000002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
