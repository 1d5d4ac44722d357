"""board search: city search keys

Revision ID: c8c3f4a50903
Revises: c7b2e3f40802
"""

from collections.abc import Sequence

revision: str = "c8c3f4a50903"
down_revision: str | None = "c7b2e3f40802"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
