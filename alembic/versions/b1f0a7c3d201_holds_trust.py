"""holds trust: hold limits, lapses, grants with an end

Revision ID: b1f0a7c3d201
Revises: 76b9365cf973
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "b1f0a7c3d201"
down_revision: str | None = "76b9365cf973"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
