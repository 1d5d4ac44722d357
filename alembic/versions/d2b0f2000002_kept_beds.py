"""beds kept for an agreement's partner

Revision ID: d2b0f2000002
Revises: d1a0f1000001
"""

from collections.abc import Sequence

revision: str = "d2b0f2000002"
down_revision: str | None = "d1a0f1000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
