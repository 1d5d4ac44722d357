"""Disbursement requests: request → (fast path | approvals) → approved (money committed) → paid,
or rejected / cancelled (commitment released). Each step is one transaction under the fund lock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit import record_event
from ledger.cases import case_for_org
from ledger.errors import Conflict, Forbidden, Invalid, NotFound
from ledger.journal import commit_funds, lock_fund, release_funds, require_cents
from ledger.models import CATEGORIES, Approval, Category, Disbursement, Status
from ledger.rules import (
    DUPLICATE_APPROVER,
    OTHER_ORG_REQUIRED,
    SELF_APPROVAL,
    Approver,
    HistoryFacts,
    RequestFacts,
    check_approval,
    evaluate,
)
from ledger.rulesets import current_rule_set
from ledger.timeutil import utcnow

ACTIVE = (Status.PENDING_APPROVAL.value, Status.APPROVED.value, Status.PAID.value)
NIGHTS_MAX = 60


@dataclass(frozen=True)
class Requester:
    user_id: str
    org_id: str
    is_lead_worker: bool


@dataclass(frozen=True)
class LedgerViewer:
    """Who is looking, as the ledger needs to know it (the shell builds it from the user's roles)."""

    user_id: str
    org_id: str
    is_approver: bool = False
    is_auditor: bool = False


@dataclass(frozen=True)
class RequestResult:
    disbursement: Disbursement
    created: bool


def _validate(category: str, amount_cents: int, nights: int | None, payee: str, note: str) -> None:
    if category not in CATEGORIES:
        raise Invalid("unknown_category", f"Unknown category; use one of {', '.join(CATEGORIES)}.")
    require_cents(amount_cents)
    if category == Category.HOTEL:
        if nights is None:
            raise Invalid("nights_required", "A hotel request needs the number of nights.")
        if not 1 <= nights <= NIGHTS_MAX:
            raise Invalid("invalid_nights", f"Nights must be between 1 and {NIGHTS_MAX}.")
    elif nights is not None:
        raise Invalid("invalid_nights", "Only hotel requests have nights.")
    if len(payee) > 200 or len(note) > 1000:
        raise Invalid("too_long", "Keep the payee under 200 characters and the note under 1000.")


async def history_facts(
    session: AsyncSession, *, fund_id: str, case_id: str, category: str, now: datetime
) -> HistoryFacts:
    spent = case((Disbursement.status == Status.PAID.value, Disbursement.paid_cents), else_=Disbursement.amount_cents)
    nights = (
        await session.execute(
            select(func.coalesce(func.sum(Disbursement.nights), 0)).where(
                Disbursement.case_id == case_id,
                Disbursement.category == Category.HOTEL.value,
                Disbursement.status.in_(ACTIVE),  # type: ignore[attr-defined]
                Disbursement.created_at >= now - timedelta(days=30),
            )
        )
    ).scalar_one()
    case_amount = (
        await session.execute(
            select(func.coalesce(func.sum(spent), 0)).where(
                Disbursement.case_id == case_id,
                Disbursement.status.in_(ACTIVE),  # type: ignore[attr-defined]
                Disbursement.created_at >= now - timedelta(days=90),
            )
        )
    ).scalar_one()
    month_start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    month = (
        await session.execute(
            select(func.coalesce(func.sum(spent), 0)).where(
                Disbursement.fund_id == fund_id,
                Disbursement.category == category,
                Disbursement.status.in_(ACTIVE),  # type: ignore[attr-defined]
                Disbursement.created_at >= month_start,
            )
        )
    ).scalar_one()
    return HistoryFacts(int(nights), int(case_amount), int(month))


async def _for_key(session: AsyncSession, user_id: str, key: str) -> Disbursement | None:
    return (
        await session.execute(
            select(Disbursement).where(Disbursement.requester_id == user_id, Disbursement.idempotency_key == key)
        )
    ).scalar_one_or_none()


async def _replay(session: AsyncSession, found: Disbursement, request_hash: str | None) -> RequestResult:
    await session.commit()  # nothing was written; a rollback would expire `found`
    if found.request_hash != request_hash:
        raise Invalid("idempotency_key_reused", "This Idempotency-Key was used with another request body.")
    return RequestResult(found, created=False)


async def request_disbursement(
    session: AsyncSession,
    *,
    fund_id: str,
    case_code: str,
    category: str,
    amount_cents: int,
    currency: str,
    payee: str,
    requester: Requester,
    nights: int | None = None,
    note: str = "",
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    now: datetime | None = None,
) -> RequestResult:
    """Decide the request with the fund's current rule set; on the fast path, commit the money at once
    (409 `insufficient_funds` and nothing stored if the fund cannot cover it)."""
    _validate(category, amount_cents, nights, payee, note)
    now = now or utcnow()
    try:
        fund = await lock_fund(session, fund_id)
        if currency != fund.currency:
            raise Invalid("wrong_currency", f"This fund pays in {fund.currency}.", currency=fund.currency)
        if idempotency_key:
            found = await _for_key(session, requester.user_id, idempotency_key)
            if found is not None:
                return await _replay(session, found, request_hash)
        case_row = await case_for_org(session, case_code, requester.org_id)
        version, rules = await current_rule_set(session, fund_id)
        history = await history_facts(session, fund_id=fund_id, case_id=case_row.id, category=category, now=now)
        decision = evaluate(
            RequestFacts(
                category=category,
                amount_cents=amount_cents,
                nights=nights,
                requester_id=requester.user_id,
                requester_org_id=requester.org_id,
                requester_is_lead_worker=requester.is_lead_worker,
            ),
            history,
            rules,
        )
        disbursement = Disbursement(
            fund_id=fund_id,
            case_id=case_row.id,
            case_code=case_row.code,
            requester_id=requester.user_id,
            requester_org_id=requester.org_id,
            category=category,
            amount_cents=amount_cents,
            currency=currency,
            payee=payee.strip(),
            nights=nights,
            note=note.strip(),
            status=decision.outcome,
            rule=decision.rule,
            approvals_needed=decision.approvals_needed,
            needs_other_org=decision.needs_other_org,
            reasons=list(decision.reasons),
            facts={**history.as_dict(), "requester_is_lead_worker": requester.is_lead_worker},
            rule_set_id=version.id,
            rule_set_version=version.version,
            created_at=now,
            idempotency_key=idempotency_key,
            request_hash=request_hash if idempotency_key else None,
        )
        session.add(disbursement)
        await session.flush()
        if decision.outcome == Status.APPROVED:
            await commit_funds(session, fund_id, amount_cents)
            disbursement.committed_cents = amount_cents
            disbursement.decided_at = now
        await record_event(
            session,
            fund,
            action="request",
            actor_user_id=requester.user_id,
            disbursement_id=disbursement.id,
            detail={
                "amount_cents": amount_cents,
                "category": category,
                "rule": decision.rule,
                "rule_set_version": version.version,
                "status": decision.outcome,
            },
            at=now,
        )
        await session.commit()
    except IntegrityError:
        await session.rollback()
        found = await _for_key(session, requester.user_id, idempotency_key) if idempotency_key else None
        if found is None:
            raise
        return await _replay(session, found, request_hash)
    except Exception:
        await session.rollback()
        raise
    return RequestResult(disbursement, created=True)


async def get_disbursement(session: AsyncSession, disbursement_id: str) -> Disbursement:
    found = await session.get(Disbursement, disbursement_id)
    if found is None:
        raise NotFound("not_found", "No such disbursement.")
    return found


def may_see(viewer: LedgerViewer, disbursement: Disbursement) -> bool:
    return viewer.is_approver or viewer.is_auditor or viewer.user_id == disbursement.requester_id


async def visible_disbursement(session: AsyncSession, disbursement_id: str, viewer: LedgerViewer) -> Disbursement:
    """404 for those who may not see it, so its existence is not revealed either."""
    found = await get_disbursement(session, disbursement_id)
    if not may_see(viewer, found):
        raise NotFound("not_found", "No such disbursement.")
    return found


async def approvals_of(session: AsyncSession, disbursement_id: str) -> list[Approval]:
    rows = await session.execute(
        select(Approval).where(Approval.disbursement_id == disbursement_id).order_by(Approval.id)  # type: ignore[arg-type]
    )
    return list(rows.scalars().all())


async def lock_disbursement(session: AsyncSession, disbursement_id: str) -> tuple[Disbursement, object]:
    """Take the fund lock, then re-read the request: its state only changes under that lock."""
    found = await get_disbursement(session, disbursement_id)
    fund = await lock_fund(session, found.fund_id)
    fresh = (
        await session.execute(
            select(Disbursement).where(Disbursement.id == disbursement_id).execution_options(populate_existing=True)
        )
    ).scalar_one()
    return fresh, fund


async def approve(
    session: AsyncSession, disbursement_id: str, *, approver: Approver, now: datetime | None = None
) -> Disbursement:
    now = now or utcnow()
    try:
        disbursement, fund = await lock_disbursement(session, disbursement_id)
        if disbursement.requester_id == approver.user_id:
            raise Forbidden(SELF_APPROVAL, "You cannot approve your own request.")
        if disbursement.status != Status.PENDING_APPROVAL:
            raise Conflict("invalid_state", f"This request is {disbursement.status}.", state=disbursement.status)
        previous = tuple(
            Approver(a.approver_id, a.approver_org_id) for a in await approvals_of(session, disbursement.id)
        )
        verdict = check_approval(
            requester=Approver(disbursement.requester_id, disbursement.requester_org_id),
            approvals_needed=disbursement.approvals_needed,
            needs_other_org=disbursement.needs_other_org,
            previous=previous,
            approver=approver,
        )
        if verdict.refused == SELF_APPROVAL:
            raise Forbidden(SELF_APPROVAL, "You cannot approve your own request.")
        if verdict.refused == DUPLICATE_APPROVER:
            raise Conflict("already_approved", "You have already approved this request; a second approver must.")
        if verdict.refused == OTHER_ORG_REQUIRED:
            raise Forbidden(
                OTHER_ORG_REQUIRED, "The last approval must come from an organisation other than the requester's."
            )
        session.add(
            Approval(
                disbursement_id=disbursement.id, approver_id=approver.user_id, approver_org_id=approver.org_id, at=now
            )
        )
        if verdict.complete:
            await commit_funds(session, disbursement.fund_id, disbursement.amount_cents)
            disbursement.status = Status.APPROVED
            disbursement.committed_cents = disbursement.amount_cents
            disbursement.decided_at = now
        session.add(disbursement)
        await session.flush()
        await record_event(
            session,
            fund,  # type: ignore[arg-type]
            action="approve",
            actor_user_id=approver.user_id,
            disbursement_id=disbursement.id,
            detail={
                "approvals": len(previous) + 1,
                "needed": disbursement.approvals_needed,
                "status": disbursement.status,
            },
            at=now,
        )
        await session.commit()
    except IntegrityError as exc:
        # Two concurrent approvals by the same person: the unique constraint keeps one.
        await session.rollback()
        raise Conflict("already_approved", "You have already approved this request.") from exc
    except Exception:
        await session.rollback()
        raise
    return disbursement


async def reject(
    session: AsyncSession, disbursement_id: str, *, approver: Approver, reason: str, now: datetime | None = None
) -> Disbursement:
    reason = reason.strip()
    if not reason:
        raise Invalid("reason_required", "Say why the request is rejected; the requester sees it.")
    if len(reason) > 1000:
        raise Invalid("too_long", "Keep the reason under 1000 characters.")
    now = now or utcnow()
    try:
        disbursement, fund = await lock_disbursement(session, disbursement_id)
        if disbursement.requester_id == approver.user_id:
            raise Forbidden(SELF_APPROVAL, "You cannot decide your own request; cancel it instead.")
        await _close(session, disbursement, Status.REJECTED, now)
        disbursement.rejection_reason = reason
        await record_event(
            session,
            fund,  # type: ignore[arg-type]
            action="reject",
            actor_user_id=approver.user_id,
            disbursement_id=disbursement.id,
            detail={"reason": reason},
            at=now,
        )
        await session.commit()
    except Exception:
        await session.rollback()
        raise
    return disbursement


async def cancel(
    session: AsyncSession, disbursement_id: str, *, user_id: str, now: datetime | None = None
) -> Disbursement:
    now = now or utcnow()
    try:
        disbursement, fund = await lock_disbursement(session, disbursement_id)
        if disbursement.requester_id != user_id:
            raise Forbidden("forbidden", "Only the requester can cancel a request.")
        await _close(session, disbursement, Status.CANCELLED, now)
        await record_event(
            session,
            fund,
            action="cancel",
            actor_user_id=user_id,
            disbursement_id=disbursement.id,
            at=now,  # type: ignore[arg-type]
        )
        await session.commit()
    except Exception:
        await session.rollback()
        raise
    return disbursement


async def _close(session: AsyncSession, disbursement: Disbursement, status: Status, now: datetime) -> None:
    """Void the pending transfer, if any, and end the request."""
    if disbursement.status not in (Status.PENDING_APPROVAL, Status.APPROVED):
        raise Conflict("invalid_state", f"This request is {disbursement.status}.", state=disbursement.status)
    await release_funds(session, disbursement.fund_id, disbursement.committed_cents)
    disbursement.committed_cents = 0
    disbursement.status = status
    disbursement.decided_at = now
    session.add(disbursement)
    await session.flush()


async def list_disbursements(
    session: AsyncSession,
    *,
    fund_id: str | None = None,
    status: str | None = None,
    requester_id: str | None = None,
    limit: int = 100,
) -> list[Disbursement]:
    query = select(Disbursement)
    if fund_id:
        query = query.where(Disbursement.fund_id == fund_id)
    if status:
        query = query.where(Disbursement.status == status)
    if requester_id:
        query = query.where(Disbursement.requester_id == requester_id)
    query = query.order_by(Disbursement.created_at.desc()).limit(limit)  # type: ignore[attr-defined]
    return list((await session.execute(query)).scalars().all())
