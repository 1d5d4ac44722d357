"""placements and follow-up

Revision ID: d4d0f4000004
Revises: d3c0f3000003
"""

from collections.abc import Sequence

revision: str = "d4d0f4000004"
down_revision: str | None = "d3c0f3000003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
