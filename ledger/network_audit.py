"""The network audit chain: what admins do outside any fund (organisations, users, roles, facilities, pools,
agreements), hash-chained like a fund's audit events and anchored by the same signed checkpoints.

Rule-set changes are fund events (ledger/rulesets.py); everything else an admin does goes here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.anchor_models import NETWORK_CHAIN, NetworkEvent, NetworkHead
from ledger.chain import GENESIS, network_event_hash
from ledger.timeutil import utcnow


async def lock_network_head(session: AsyncSession) -> NetworkHead:
    """The head row, locked (created the first time; a concurrent creator wins and we lock its row)."""
    for _ in range(2):
        head = (
            await session.execute(
                select(NetworkHead)
                .where(NetworkHead.name == NETWORK_CHAIN)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        if head is not None:
            return head
        try:
            async with session.begin_nested():
                session.add(NetworkHead(name=NETWORK_CHAIN))
        except IntegrityError:
            continue
    head = (
        await session.execute(select(NetworkHead).where(NetworkHead.name == NETWORK_CHAIN).with_for_update())
    ).scalar_one()
    return head


async def network_head(session: AsyncSession) -> NetworkHead:
    head = await session.get(NetworkHead, NETWORK_CHAIN, populate_existing=True)
    return head if head is not None else NetworkHead(name=NETWORK_CHAIN)


async def record_network_event(
    session: AsyncSession,
    action: str,
    actor_user_id: str | None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> NetworkEvent:
    """Append one event and commit (the admin's change itself was committed just before)."""
    try:
        head = await lock_network_head(session)
        event = NetworkEvent(
            seq=head.count + 1,
            at=at or utcnow(),
            action=action,
            actor_user_id=actor_user_id,
            detail=detail or {},
            prev_hash=head.head_hash or GENESIS,
            hash="",
        )
        event.hash = network_event_hash(event)
        session.add(event)
        head.count = event.seq
        head.head_hash = event.hash
        session.add(head)
        await session.flush()
        await session.commit()
    except Exception:
        await session.rollback()
        raise
    return event


async def network_events(session: AsyncSession, *, limit: int = 200) -> list[NetworkEvent]:
    """Newest first."""
    rows = await session.execute(select(NetworkEvent).order_by(NetworkEvent.seq.desc()).limit(limit))  # type: ignore[attr-defined]
    return list(rows.scalars().all())
