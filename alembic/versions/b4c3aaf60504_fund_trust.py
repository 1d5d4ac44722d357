"""fund trust: caps, exceptions, idempotent approvals and cases

Revision ID: b4c3aaf60504
Revises: b3d2b9e5f403
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "b4c3aaf60504"
down_revision: str | None = "b3d2b9e5f403"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
