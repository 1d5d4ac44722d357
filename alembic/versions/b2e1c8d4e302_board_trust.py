"""board trust: address releases, pool ceilings, idempotent pool writes

Revision ID: b2e1c8d4e302
Revises: b1f0a7c3d201
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "b2e1c8d4e302"
down_revision: str | None = "b1f0a7c3d201"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
