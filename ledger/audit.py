"""The audit trail: approvals, rejections, payments, deposits and rule changes, hash-chained per fund."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
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


async def record_events(
    session: AsyncSession,
    fund: Fund,
    events: Sequence[tuple[str, str | None, str | None, dict[str, Any], datetime]],
) -> list[AuditEvent]:
    """Append many events at once, each (action, actor, disbursement id, detail, at): one INSERT, the fund's
    head set once (a batch of postings, `ledger.journal.post_entries`). Same rules as `record_event`."""
    appended = []
    seq, prev = fund.audit_count, fund.audit_head_hash or GENESIS
    for action, actor_user_id, disbursement_id, detail, at in events:
        seq += 1
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
        event.hash = prev = event_hash(event)
        appended.append(event)
    if appended:
        columns = ("id", "fund_id", "seq", "at", "action", "actor_user_id", "disbursement_id", "detail", "prev_hash")
        await session.execute(
            insert(AuditEvent), [{**{c: getattr(e, c) for c in columns}, "hash": e.hash} for e in appended]
        )
        fund.audit_count, fund.audit_head_hash = seq, prev
        session.add(fund)
    return appended
