"""local time: a user's own time zone

Revision ID: c7b2e3f40802
Revises: c6a1d2e30701
"""

from collections.abc import Sequence

revision: str = "c7b2e3f40802"
down_revision: str | None = "c6a1d2e30701"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
