"""fund items: several items per fund request

Revision ID: c9d4a5b61004
Revises: c8c3f4a50903
"""

from collections.abc import Sequence

revision: str = "c9d4a5b61004"
down_revision: str | None = "c8c3f4a50903"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
