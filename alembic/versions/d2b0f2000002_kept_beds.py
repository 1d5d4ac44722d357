"""beds kept for an agreement's partner

Revision ID: d2b0f2000002
Revises: d1a0f1000001
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "d2b0f2000002"
down_revision: str | None = "d1a0f1000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = "('requested', 'confirmed')"


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN on both databases: no table is rebuilt.
    for table, column in (
        ("bed_pool", "kept"),
        ("bed_pool", "kept_in_use"),
        ("standing_agreement", "beds_lent"),
        ("bed_hold", "kept_beds"),
    ):
        op.add_column(table, sa.Column(column, sa.Integer(), nullable=False, server_default=sa.text("0")))
    _keep_what_agreements_promised()
    if op.get_bind().dialect.name == "sqlite":
        # Changing a CHECK on SQLite rebuilds the table, and dropping a table other rows point at fails while
        # foreign keys are on (as they are in every transaction here). The old CHECK stays: the new invariant
        # implies it, and the conditional UPDATEs (beds/pools.py `move_counts`) enforce the new one.
        return
    with op.batch_alter_table("bed_pool", schema=None) as batch_op:
        batch_op.drop_constraint("no_overbooking", type_="check")
        batch_op.create_check_constraint("kept_nonneg", "kept >= 0")
        batch_op.create_check_constraint("kept_in_use_range", "kept_in_use >= 0 AND kept_in_use <= kept")
        batch_op.create_check_constraint(
            "no_overbooking", "occupied + out_of_service + held + kept - kept_in_use <= capacity"
        )
    with op.batch_alter_table("standing_agreement", schema=None) as batch_op:
        batch_op.create_check_constraint("agreement_kept_range", "beds_lent >= 0 AND beds_in_use + beds_lent <= beds")


def _keep_what_agreements_promised() -> None:
    """Agreements made before beds were kept counted a whole hold against K: those holds drew on kept beds.
    Each active agreement now keeps its unused beds where the pool has them free; the rest are lent (they come
    back as beds free up), so no pool goes past its capacity."""
    bind = op.get_bind()
    bind.execute(
        sa.text(
            f"UPDATE bed_hold SET kept_beds = beds WHERE agreement_id IS NOT NULL AND status IN {ACTIVE} "
            "AND agreement_id IN (SELECT id FROM standing_agreement WHERE active)"
        )
    )
    bind.execute(
        sa.text(
            "UPDATE standing_agreement SET beds_in_use = (SELECT COALESCE(SUM(h.kept_beds), 0) FROM bed_hold h "
            "WHERE h.agreement_id = standing_agreement.id) WHERE active"
        )
    )
    bind.execute(sa.text("UPDATE standing_agreement SET beds = beds_in_use WHERE active AND beds_in_use > beds"))
    rows = bind.execute(
        sa.text(
            "SELECT a.id, a.pool_id, a.beds, a.beds_in_use, p.capacity - p.occupied - p.out_of_service - p.held "
            "FROM standing_agreement a JOIN bed_pool p ON p.id = a.pool_id WHERE a.active "
            "ORDER BY a.pool_id, a.created_at, a.id"
        )
    ).all()
    free: dict[str, int] = {}
    for agreement_id, pool_id, beds, in_use, pool_free in rows:
        left = free.setdefault(pool_id, max(int(pool_free), 0))
        keep = min(beds - in_use, left)
        free[pool_id] = left - keep
        bind.execute(
            sa.text("UPDATE standing_agreement SET beds_lent = :lent WHERE id = :id"),
            {"lent": beds - in_use - keep, "id": agreement_id},
        )
        bind.execute(
            sa.text("UPDATE bed_pool SET kept = kept + :beds, kept_in_use = kept_in_use + :used WHERE id = :id"),
            {"beds": beds, "used": beds - keep, "id": pool_id},
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("agreement_kept_range", "standing_agreement", type_="check")
        for name in ("no_overbooking", "kept_in_use_range", "kept_nonneg"):
            op.drop_constraint(name, "bed_pool", type_="check")
        op.create_check_constraint("no_overbooking", "bed_pool", "occupied + out_of_service + held <= capacity")
    for table, column in (
        ("bed_hold", "kept_beds"),
        ("standing_agreement", "beds_lent"),
        ("bed_pool", "kept_in_use"),
        ("bed_pool", "kept"),
    ):
        op.drop_column(table, column)
