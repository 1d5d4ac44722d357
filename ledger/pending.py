"""Pending transfers: money an approved disbursement holds on the fund's cash until it is posted or voided.

The words are TigerBeetle's. Approving a request *pends* its amount (`pend`); paying it *posts* the pending
transfer, for the actual amount (`post_pending`); rejecting or cancelling it, or closing a card below its
limit, *voids* what is left (`void_pending`). What is pending is the cash balance row's `committed_cents`,
so "the fund never promises more than it holds" is a conditional UPDATE plus the row's CHECK constraint.
The caller holds `lock_fund` and commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.errors import Conflict
from ledger.funds import cash_account_id, fund_summary
from ledger.journal import LineSpec, post_entry
from ledger.models import AccountBalance, Fund, JournalEntry


async def pend(session: AsyncSession, fund_id: str, amount_cents: int) -> None:
    """Open a pending transfer: the conditional UPDATE is the check, so two approvals cannot both pass it."""
    cash = await cash_account_id(session, fund_id)
    done = (
        await session.execute(
            update(AccountBalance)
            .where(
                AccountBalance.account_id == cash,
                AccountBalance.balance_cents - AccountBalance.committed_cents >= amount_cents,
            )
            .values(committed_cents=AccountBalance.committed_cents + amount_cents)
            .returning(AccountBalance.account_id)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    if done is None:
        summary = await fund_summary(session, fund_id)
        raise Conflict(
            "insufficient_funds",
            "The fund does not hold enough to commit this amount.",
            available_cents=summary.available_cents,
        )


async def void_pending(session: AsyncSession, fund_id: str, amount_cents: int) -> None:
    """Void (part of) a pending transfer."""
    if amount_cents == 0:
        return
    cash = await cash_account_id(session, fund_id)
    done = (
        await session.execute(
            update(AccountBalance)
            .where(AccountBalance.account_id == cash, AccountBalance.committed_cents >= amount_cents)
            .values(committed_cents=AccountBalance.committed_cents - amount_cents)
            .returning(AccountBalance.account_id)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    if done is None:
        raise Conflict("commitment_mismatch", "The fund's commitments do not cover this release.")


async def post_pending(
    session: AsyncSession,
    fund: Fund,
    pending_cents: int,
    *,
    kind: str,
    lines: Sequence[LineSpec],
    memo: str,
    posted_at: datetime,
    disbursement_id: str,
) -> JournalEntry:
    """Post a pending transfer as `lines` (the amount actually paid, which may be less), voiding all
    `pending_cents` in the statement that moves the balances, so the balance row's CHECK (balance >=
    committed) holds after it, and a pending transfer that is not there is refused (`commitment_mismatch`)."""
    return await post_entry(
        session,
        fund,
        kind=kind,
        lines=lines,
        memo=memo,
        posted_at=posted_at,
        disbursement_id=disbursement_id,
        release_cents=pending_cents,
    )
