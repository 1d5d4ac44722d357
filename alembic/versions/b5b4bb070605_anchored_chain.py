"""anchored chain: rule set approvals, checkpoints, admin audit

Revision ID: b5b4bb070605
Revises: b4c3aaf60504
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "b5b4bb070605"
down_revision: str | None = "b4c3aaf60504"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
