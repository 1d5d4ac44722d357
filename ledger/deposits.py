"""Money in: a grant, a donation or a transfer debits cash and credits the income account of its source."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit import record_event
from ledger.errors import Invalid
from ledger.funds import lock_fund
from ledger.idempotency import end_replay, stored_for_key
from ledger.journal import EntryView, LineSpec, entry_views, post_entry, posted_view, require_cents
from ledger.models import CASH_ACCOUNT, DepositSource, JournalEntry

NOTE_MAX = 500


@dataclass(frozen=True)
class DepositResult:
    entry: EntryView
    created: bool


async def deposit(
    session: AsyncSession,
    fund_id: str,
    *,
    amount_cents: int,
    source: str,
    note: str = "",
    actor_user_id: str,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    now: datetime | None = None,
) -> DepositResult:
    """Post the deposit and its audit event in one transaction; commits."""
    require_cents(amount_cents)
    if source not in {s.value for s in DepositSource}:
        raise Invalid("unknown_source", "A deposit's source is grant, donation or transfer_in.")
    if len(note) > NOTE_MAX:
        raise Invalid("note_too_long", f"Keep the note under {NOTE_MAX} characters.")
    try:
        fund = await lock_fund(session, fund_id)
        if idempotency_key:
            existing = await _entry_for_key(session, actor_user_id, idempotency_key)
            if existing is not None:
                return await _replay(session, existing, request_hash)
        lines = [LineSpec(CASH_ACCOUNT, "debit", amount_cents), LineSpec(f"income:{source}", "credit", amount_cents)]
        entry = await post_entry(
            session,
            fund,
            kind="deposit",
            lines=lines,
            memo=f"{source}: {note}" if note else source,
            posted_at=now,
            idempotency_user_id=actor_user_id,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )
        detail = {"entry": entry.id, "amount_cents": amount_cents, "source": source}
        await record_event(session, fund, "deposit", actor_user_id, detail=detail, at=now)
        await session.commit()
    except IntegrityError:
        # A concurrent duplicate with the same key won the unique constraint: answer with its entry.
        await session.rollback()
        existing = await _entry_for_key(session, actor_user_id, idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        return await _replay(session, existing, request_hash)
    return DepositResult(posted_view(entry, lines), created=True)  # the lines posted, not read back


async def _entry_for_key(session: AsyncSession, user_id: str, key: str) -> JournalEntry | None:
    return await stored_for_key(session, JournalEntry, JournalEntry.idempotency_user_id, user_id, key)


async def _replay(session: AsyncSession, entry: JournalEntry, request_hash: str | None) -> DepositResult:
    view = (await entry_views(session, [entry]))[0]
    await end_replay(session, entry, request_hash)
    return DepositResult(view, created=False)
