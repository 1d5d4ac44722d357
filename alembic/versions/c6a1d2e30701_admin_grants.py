"""admin grants: role grants in another organisation wait for a second person; cases close

Revision ID: c6a1d2e30701
Revises: b5b4bb070605
"""

from collections.abc import Sequence

revision: str = "c6a1d2e30701"
down_revision: str | None = "b5b4bb070605"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
