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
    *,
    action: str,
    actor_user_id: str | None,
    disbursement_id: str | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append an event. The caller holds the fund lock (the chain head lives on the fund row) and commits."""
    at = at or utcnow()
    detail = detail or {}
    seq = fund.audit_count + 1
    prev = fund.audit_head_hash or GENESIS
    event = AuditEvent(
        fund_id=fund.id,
        seq=seq,
        at=at,
        action=action,
        actor_user_id=actor_user_id,
        disbursement_id=disbursement_id,
        detail=detail,
        prev_hash=prev,
        hash="",
    )
    event.hash = event_hash(
        event_id=event.id,
        fund_id=fund.id,
        seq=seq,
        at=at,
        action=action,
        actor_user_id=actor_user_id,
        disbursement_id=disbursement_id,
        detail=detail,
        prev_hash=prev,
    )
    session.add(event)
    fund.audit_count = seq
    fund.audit_head_hash = event.hash
    session.add(fund)
    await session.flush()
    return event
