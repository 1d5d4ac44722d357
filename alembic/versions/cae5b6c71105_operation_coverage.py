"""operation coverage: operation coverage

Revision ID: cae5b6c71105
Revises: c9d4a5b61004
"""

from collections.abc import Sequence

revision: str = "cae5b6c71105"
down_revision: str | None = "c9d4a5b61004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
