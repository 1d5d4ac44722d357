"""Demo data for holds: standing agreements and one police operation with holds, so the pages are not empty."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beds import agreements as agreement_ops
from beds import holds as hold_ops
from beds import operations as op_ops
from beds.errors import BedsError
from beds.holds import NewHold
from beds.holds_models import Agreement
from beds.models import BedPool
from beds.operations import NewOperation
from beds.planner import Need, PlanOptions
from beds.timeutil import utcnow
from exchange.holds.service import operation_requester
from exchange.web.auth import viewer_for

if TYPE_CHECKING:
    from exchange.demo.network import DemoNetwork


async def seed_holds(session: AsyncSession, net: DemoNetwork) -> None:
    police = net.users["police"]
    staff = [net.users["shelter"], net.users["shelter2"]]
    # One agreement per demo shelter user: their first pool with free beds keeps two (or one) of them for the
    # demo police service, the agreements' named partner: nobody else may take them, its holds come first.
    for user, beds, scope in zip(staff, (2, 2), ("police", "all"), strict=True):
        facility_ids = [f.id for f in net.facilities if f.organisation_id == user.organisation_id]
        pools = (
            (await session.execute(select(BedPool).where(BedPool.facility_id.in_(facility_ids)).order_by(BedPool.id)))  # type: ignore[attr-defined]
            .scalars()
            .all()
        )
        pool = next((p for p in pools if p.free >= beds), None)
        if pool is not None:
            await agreement_ops.create_agreement(
                session,
                viewer_for(user),
                pool_id=pool.id,
                beds=beds,
                partner_org_id=police.organisation_id,
                partner_exists=True,
                scope=scope,
            )
    now = utcnow()
    aurore = NewOperation(
        code_name="Opération Aurore (demo)",
        province="QC",
        city="Montréal",
        window_start=now + timedelta(days=1),
        window_end=now + timedelta(days=1, hours=6),
        needs=[Need("women", 4), Need("youth", 1)],
        notes="Demo operation: no real data.",
    )
    operation, _needs = await op_ops.create_operation(session, viewer_for(police), aurore)
    requester = await operation_requester(session, police, police.organisation_id)
    try:
        await op_ops.allocate(
            session,
            viewer_for(police),
            requester,
            operation.id,
            PlanOptions(allow_other_cities=True),
        )
    except BedsError:
        # The seeded network may be too full for the whole operation; the operation page still shows it.
        await session.rollback()
    # The police service draws on a bed kept for it: confirmed at once, one of the agreement's beds in use.
    kept_pool = await session.scalar(
        select(Agreement.pool_id).where(Agreement.partner_org_id == police.organisation_id)
    )
    if kept_pool is not None:
        try:
            await hold_ops.create_hold(
                session, requester, NewHold(kept_pool, 1, now + timedelta(hours=30), operation_id=operation.id)
            )
        except BedsError:
            await session.rollback()
