"""placement fit: places, languages, culturally specific support

Revision ID: d6f0f6000006
Revises: d5e0f5000005
"""

from collections.abc import Sequence

revision: str = "d6f0f6000006"
down_revision: str | None = "d5e0f5000005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
