"""Recurring travel: a request approved once for a total and a number of trips (return trips to a courthouse
over months), each trip then drawn against it without a new approval.

Approval pends the whole total, like any request. A trip is one transaction under the fund lock: a
conditional UPDATE of the request (still approved, a trip left, the amount within what is left) is the check,
so two concurrent draws can never pass the count or the total; then the trip posts like a manual payment
(one balanced entry: the travel expense against cash, releasing that much of the pending transfer) with its
audit event. The last trip, by count or by total, marks the request paid and voids whatever is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit import record_event
from ledger.disbursements import items_of, lock_disbursement
from ledger.errors import Conflict, Invalid
from ledger.idempotency import end_replay, stored_for_key
from ledger.journal import LineSpec, require_cents
from ledger.models import CASH_ACCOUNT, Disbursement, Status, Trip
from ledger.payments import expense_lines
from ledger.pending import post_pending, void_pending
from ledger.timeutil import utcnow

NOT_RECURRING = "not_recurring"
TRIPS_USED_UP = "trips_used_up"
OVER_TOTAL = "trip_over_total"
ALREADY_DRAWN = "trip_already_drawn"


@dataclass(frozen=True)
class TripResult:
    trip: Trip
    disbursement: Disbursement
    created: bool


def remaining_cents(d: Disbursement) -> int:
    return d.amount_cents - d.paid_cents if d.trips_max is not None else 0


async def trips_of(session: AsyncSession, disbursement_id: str) -> list[Trip]:
    rows = await session.execute(select(Trip).where(Trip.disbursement_id == disbursement_id).order_by(Trip.seq))  # type: ignore[arg-type]
    return list(rows.scalars().all())


async def _for_key(session: AsyncSession, user_id: str, key: str) -> Trip | None:
    return await stored_for_key(session, Trip, Trip.idempotency_user_id, user_id, key)


async def _replay(session: AsyncSession, trip: Trip, request_hash: str | None) -> TripResult:
    disbursement = await session.get(Disbursement, trip.disbursement_id, populate_existing=True)
    await end_replay(session, trip, request_hash)
    assert disbursement is not None  # a trip always has its request (foreign key)
    return TripResult(trip, disbursement, created=False)


def _refusal(d: Disbursement, amount_cents: int) -> Conflict:
    """Why a draw cannot pass, from the request as it is now."""
    if d.trips_max is None:
        return Conflict(NOT_RECURRING, "This request is not a recurring travel request; pay it instead.")
    if d.status == Status.PAID or d.trips_drawn >= d.trips_max:
        return Conflict(
            TRIPS_USED_UP, "Every trip of this request was drawn: ask for a new request.", trips_max=d.trips_max
        )
    if d.status != Status.APPROVED:
        return Conflict("invalid_state", f"This request is {d.status}.", state=d.status)
    return Conflict(
        OVER_TOTAL,
        "This trip is more than what is left of the approved total.",
        remaining_cents=remaining_cents(d),
        amount_cents=amount_cents,
    )


async def draw_trip(
    session: AsyncSession,
    disbursement_id: str,
    *,
    amount_cents: int,
    trip_date: date,
    actor_user_id: str,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    now: datetime | None = None,
    after_trips: int | None = None,
) -> TripResult:
    """Draw one trip of `amount_cents` against an approved recurring request: 409 `trips_used_up` once the
    count is reached, `trip_over_total` above what is left of the total; nothing written on a refusal.
    `after_trips`: the number of trips drawn the form was shown with; another draw since is 409
    `trip_already_drawn` (a form sent twice draws once)."""
    require_cents(amount_cents)
    now = now or utcnow()
    try:
        disbursement, fund = await lock_disbursement(session, disbursement_id)
        if idempotency_key:
            found = await _for_key(session, actor_user_id, idempotency_key)
            if found is not None:
                if found.disbursement_id != disbursement_id:
                    await session.commit()
                    raise Invalid("idempotency_key_reused", "This Idempotency-Key was used with another request body.")
                return await _replay(session, found, request_hash)
        if disbursement.trips_max is None or disbursement.status != Status.APPROVED:
            raise _refusal(disbursement, amount_cents)
        if after_trips is not None and disbursement.trips_drawn != after_trips:
            raise Conflict(
                ALREADY_DRAWN, "A trip was drawn since this form was shown.", trips_drawn=disbursement.trips_drawn
            )
        # The invariant is the statement's condition, not the Python check above: whatever else holds the
        # row, a draw passes only while a trip and enough of the total are left.
        drawn = (
            await session.execute(
                update(Disbursement)
                .where(
                    Disbursement.id == disbursement_id,  # type: ignore[arg-type]
                    Disbursement.status == Status.APPROVED.value,  # type: ignore[arg-type]
                    Disbursement.trips_drawn < Disbursement.trips_max,  # type: ignore[operator]
                    Disbursement.paid_cents + amount_cents <= Disbursement.amount_cents,  # type: ignore[operator]
                    Disbursement.committed_cents >= amount_cents,  # type: ignore[operator]
                )
                .values(
                    trips_drawn=Disbursement.trips_drawn + 1,
                    paid_cents=Disbursement.paid_cents + amount_cents,
                    committed_cents=Disbursement.committed_cents - amount_cents,
                )
                .returning(Disbursement.trips_drawn)
                .execution_options(synchronize_session=False)
            )
        ).scalar_one_or_none()
        if drawn is None:
            raise _refusal(disbursement, amount_cents)
        disbursement = (
            await session.execute(
                select(Disbursement)
                .where(Disbursement.id == disbursement_id)  # type: ignore[arg-type]
                .execution_options(populate_existing=True)
            )
        ).scalar_one()
        items = (await items_of(session, [disbursement.id]))[disbursement.id]
        entry = await post_pending(
            session,
            fund,
            amount_cents,
            kind="payment",
            lines=[*expense_lines(disbursement, items, amount_cents), LineSpec(CASH_ACCOUNT, "credit", amount_cents)],
            memo=f"{disbursement.category} {disbursement.case_code} (trip {drawn} of {disbursement.trips_max})",
            posted_at=now,
            disbursement_id=disbursement.id,
        )
        trip = Trip(
            disbursement_id=disbursement.id,
            seq=drawn,
            amount_cents=amount_cents,
            trip_date=trip_date,
            entry_id=entry.id,
            actor_user_id=actor_user_id,
            created_at=now,
            idempotency_user_id=actor_user_id if idempotency_key else None,
            idempotency_key=idempotency_key,
            request_hash=request_hash if idempotency_key else None,
        )
        session.add(trip)
        released = 0
        if drawn >= (disbursement.trips_max or 0) or disbursement.paid_cents >= disbursement.amount_cents:
            # The last trip: what is left of the total goes back to the fund.
            released = disbursement.committed_cents
            await void_pending(session, disbursement.fund_id, released)
            disbursement.committed_cents = 0
            disbursement.status = Status.PAID
            disbursement.paid_at = now
            session.add(disbursement)
        detail = {
            "amount_cents": amount_cents,
            "entry": entry.id,
            "trip": drawn,
            "trips_max": disbursement.trips_max,
            "date": trip_date.isoformat(),
            "released_cents": released,
        }
        await record_event(session, fund, "trip", actor_user_id, disbursement.id, detail, now)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        found = await _for_key(session, actor_user_id, idempotency_key) if idempotency_key else None
        if found is None:
            raise
        return await _replay(session, found, request_hash)
    except Exception:
        await session.rollback()
        raise
    return TripResult(trip, disbursement, created=True)
