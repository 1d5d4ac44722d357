"""HSDS directory ids and imports

Revision ID: d5e0f5000005
Revises: d4d0f4000004
"""

from collections.abc import Sequence

revision: str = "d5e0f5000005"
down_revision: str | None = "d4d0f4000004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
