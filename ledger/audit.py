"""The audit trail: approvals, rejections, payments, deposits and rule changes, hash-chained per fund."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ledger.chain import GENESIS, event_hash
from ledger.models import AuditEvent, Fund
from ledger.timeutil import utcnow


async def record_event(
    session: AsyncSession,
    fund: Fund,
    action: str,
    actor_user_id: str | None,
    disbursement_id: str | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append an event. The caller holds the fund lock (the chain head lives on the fund row) and commits."""
    event = AuditEvent(
        fund_id=fund.id,
        seq=fund.audit_count + 1,
        at=at or utcnow(),
        action=action,
        actor_user_id=actor_user_id,
        disbursement_id=disbursement_id,
        detail=detail or {},
        prev_hash=fund.audit_head_hash or GENESIS,
        hash="",
    )
    event.hash = event_hash(event)
    session.add(event)
    fund.audit_count = event.seq
    fund.audit_head_hash = event.hash
    session.add(fund)
    await session.flush()
    return event
