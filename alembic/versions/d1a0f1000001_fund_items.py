"""fund requests with several items

Revision ID: d1a0f1000001
Revises: c7b2e3f40802
"""

from collections.abc import Sequence

revision: str = "d1a0f1000001"
down_revision: str | None = "c7b2e3f40802"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
