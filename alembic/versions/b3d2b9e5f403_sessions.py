"""sessions: token expiry and last use, login failures

Revision ID: b3d2b9e5f403
Revises: b2e1c8d4e302
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "b3d2b9e5f403"
down_revision: str | None = "b2e1c8d4e302"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
