"""Disbursement requests: request → (fast path | approvals) → approved (the amount pending on the fund) →
paid (posted), or rejected / cancelled (the pending transfer voided). Each step is one transaction under
the fund lock."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit import record_event
from ledger.cases import open_case_for_org
from ledger.errors import Conflict, Forbidden, Invalid, NotFound
from ledger.funds import lock_fund
from ledger.idempotency import end_replay, stored_for_key
from ledger.journal import require_cents
from ledger.models import CATEGORIES, Approval, Disbursement, DisbursementItem, Fund, Status
from ledger.pending import pend, void_pending
from ledger.rules import (
    DUPLICATE_APPROVER,
    OTHER_ORG_REQUIRED,
    SELF_APPROVAL,
    Approver,
    HistoryFacts,
    ItemFacts,
    RuleDecision,
    check_approval,
    counts_nights,
    evaluate_items,
)
from ledger.rulesets import current_rule_set
from ledger.stripe_models import Card, CardAuthorization, CardStatus
from ledger.timeutil import utcnow

ACTIVE = (Status.PENDING_APPROVAL.value, Status.APPROVED.value, Status.PAID.value)
NIGHTS_MAX = 60
ITEMS_MAX = 10
TRIPS_MAX = 100
TRAVEL_CATEGORIES = ("travel_local", "travel_interprovincial", "travel_international")


@dataclass(frozen=True)
class Requester:
    """Who asks for money: the user, the organisation that leads the case, and whether they are a lead worker."""

    user_id: str
    organisation_id: str
    is_lead_worker: bool


@dataclass(frozen=True)
class LedgerViewer:
    """Who is looking, as the ledger needs to know it (the shell builds it from the user's roles)."""

    user_id: str
    organisation_id: str
    is_approver: bool = False
    is_auditor: bool = False


@dataclass(frozen=True)
class NewItem:
    """One item of a request: what for, how much, its nights (a hotel stay only), who is paid, a note."""

    category: str
    amount_cents: int
    nights: int | None = None
    payee: str = ""
    note: str = ""


@dataclass(frozen=True)
class NewDisbursement:
    """A request as its requester writes it. `currency` None is the fund's own (a form does not ask).
    Either `items` (1 to ITEMS_MAX), or, as before requests had items, one item told by `category`,
    `amount_cents`, `nights` and `payee`; `note` is the request's."""

    fund_id: str
    case_code: str
    category: str = ""
    amount_cents: int = 0
    payee: str = ""
    currency: str | None = None
    nights: int | None = None
    note: str = ""
    items: tuple[NewItem, ...] = ()
    # The hold or placement the request serves (travel to a bed), checked by the shell against the beds.
    hold_id: str | None = None
    placement_id: str | None = None
    # Recurring travel: the total is approved once for at most this many trips (ledger/trips.py draws them).
    trips: int | None = None

    def lines(self) -> tuple[NewItem, ...]:
        if self.items:
            return self.items
        return (NewItem(self.category, self.amount_cents, self.nights, self.payee),)


@dataclass(frozen=True)
class RequestResult:
    disbursement: Disbursement
    created: bool


def _validate(new: NewDisbursement) -> None:
    """Invalid naming the first wrong field; for a request of `items`, with the `path` of the bad item's field
    (`items[1].amount_cents`) and its position (`item`)."""
    if len(new.items) > ITEMS_MAX:
        raise Invalid("too_many_items", f"A request holds at most {ITEMS_MAX} items.", path="items")
    listed = bool(new.items)
    for position, item in enumerate(new.lines()):

        def where(name: str, position: int = position) -> dict[str, Any]:
            return {"path": f"items[{position}].{name}", "item": position} if listed else {}

        if item.category not in CATEGORIES:
            raise Invalid(
                "unknown_category", f"Unknown category; use one of {', '.join(CATEGORIES)}.", **where("category")
            )
        try:
            require_cents(item.amount_cents)
        except Invalid as exc:
            raise Invalid(exc.code, exc.detail, **where("amount_cents")) from None
        if counts_nights(item.category):
            if item.nights is None:
                raise Invalid("nights_required", "A hotel request needs the number of nights.", **where("nights"))
            if not 1 <= item.nights <= NIGHTS_MAX:
                raise Invalid("invalid_nights", f"Nights must be between 1 and {NIGHTS_MAX}.", **where("nights"))
        elif item.nights is not None:
            raise Invalid("invalid_nights", "Only hotel requests have nights.", **where("nights"))
        if len(item.payee) > 200 or len(item.note) > 1000:
            raise Invalid("too_long", "Keep the payee under 200 characters and the note under 1000.", **where("payee"))
    if len(new.note) > 1000:
        raise Invalid("too_long", "Keep the payee under 200 characters and the note under 1000.")
    if new.hold_id is not None and new.placement_id is not None:
        raise Invalid("one_bed_link", "Name the hold or the placement the request serves, not both.", path="hold_id")
    if new.trips is not None:
        if not 1 <= new.trips <= TRIPS_MAX:
            raise Invalid("invalid_trips", f"A recurring request holds 1 to {TRIPS_MAX} trips.", path="trips")
        if any(item.category not in TRAVEL_CATEGORIES for item in new.lines()):
            raise Invalid("trips_need_travel", "Only travel is drawn trip by trip.", path="trips")


def item_facts(items: Sequence[NewItem | DisbursementItem]) -> tuple[ItemFacts, ...]:
    return tuple(ItemFacts(i.category, i.amount_cents, i.nights) for i in items)


def main_category(items: Sequence[NewItem | DisbursementItem]) -> str:
    """The request's category as one word: its largest item's (the first of equals)."""
    return max(items, key=lambda i: i.amount_cents).category if len(items) > 1 else items[0].category


def total_nights(items: Sequence[NewItem | DisbursementItem]) -> int | None:
    if not any(counts_nights(i.category) for i in items):
        return None
    return sum(i.nights or 0 for i in items if counts_nights(i.category))


async def items_of(session: AsyncSession, disbursement_ids: Sequence[str]) -> dict[str, list[DisbursementItem]]:
    """Each request's items in their order (one query for the whole list)."""
    if not disbursement_ids:
        return {}
    rows = await session.execute(
        select(DisbursementItem)
        .where(DisbursementItem.disbursement_id.in_(list(disbursement_ids)))  # type: ignore[attr-defined]
        .order_by(DisbursementItem.disbursement_id, DisbursementItem.position)
    )
    found: dict[str, list[DisbursementItem]] = {d: [] for d in disbursement_ids}
    for item in rows.scalars().all():
        found[item.disbursement_id].append(item)
    return found


async def history_facts(
    session: AsyncSession,
    *,
    fund_id: str,
    case_id: str,
    category: str,
    now: datetime,
    categories: Sequence[str] = (),
    requester_id: str | None = None,
    exclude_id: str | None = None,
    made_before: datetime | None = None,
) -> HistoryFacts:
    """What the fund spent or promised before this request (`exclude_id` and `made_before`: the request
    itself and when it was made, when it is evaluated again at approval: requests made after it count only
    once approved). Caps count pending requests; the category budget only approved ones, per item: the month
    of `category` and of each of `categories` (a request's items)."""
    ended = (Status.CANCELLED.value, Status.REJECTED.value)
    # Paid: what was paid. Cancelled or rejected: what a card still spent after the end (an exception).
    spent = case(
        (Disbursement.status == Status.PAID.value, Disbursement.paid_cents),
        (Disbursement.status.in_(ended), Disbursement.paid_cents),  # type: ignore[attr-defined]
        else_=Disbursement.amount_cents,
    )
    counted = or_(Disbursement.status.in_(ACTIVE), Disbursement.paid_cents > 0)  # type: ignore[attr-defined]
    # Only hotel items have nights, and a request's `nights` is the sum of its hotel items' nights.
    nights = case((Disbursement.status.in_(ACTIVE), Disbursement.nights), else_=0)  # type: ignore[attr-defined]
    others = [Disbursement.fund_id == fund_id, counted]
    if exclude_id is not None:
        others.append(Disbursement.id != exclude_id)
    if made_before is not None:
        decided = (Status.APPROVED.value, Status.PAID.value, Status.CANCELLED.value, Status.REJECTED.value)
        others.append(or_(Disbursement.created_at < made_before, Disbursement.status.in_(decided)))  # type: ignore[attr-defined,operator]

    async def total(expression: Any, *where: Any) -> int:
        found = await session.execute(select(func.coalesce(func.sum(expression), 0)).where(*others, *where))
        return int(found.scalar_one())

    day30, day90 = now - timedelta(days=30), now - timedelta(days=90)
    hotel = Disbursement.nights.is_not(None)  # type: ignore[union-attr]
    month_start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    # An item's share of what its request paid: exact for a request of one item, to the cent for several.
    item_paid = Disbursement.paid_cents * DisbursementItem.amount_cents // Disbursement.amount_cents
    approved_spent = case(
        (Disbursement.status == Status.APPROVED.value, DisbursementItem.amount_cents),
        (Disbursement.status == Status.PAID.value, item_paid),
        (Disbursement.status.in_(ended), item_paid),  # type: ignore[attr-defined]
        else_=0,
    )

    async def month_of(wanted: str) -> int:
        found = await session.execute(
            select(func.coalesce(func.sum(approved_spent), 0))
            .select_from(Disbursement)
            .join(DisbursementItem, DisbursementItem.disbursement_id == Disbursement.id)  # type: ignore[arg-type]
            .where(*others, DisbursementItem.category == wanted, Disbursement.created_at >= month_start)
        )
        return int(found.scalar_one())

    by_category = {c: await month_of(c) for c in dict.fromkeys((category, *categories))}
    requester_nights = requester_amount = 0
    if requester_id is not None:
        mine = Disbursement.requester_id == requester_id
        requester_nights = await total(nights, mine, hotel, Disbursement.created_at >= day30)
        requester_amount = await total(spent, mine, Disbursement.created_at >= day30)
    return HistoryFacts(
        case_hotel_nights_30d=await total(
            nights, Disbursement.case_id == case_id, hotel, Disbursement.created_at >= day30
        ),
        case_amount_cents_90d=await total(spent, Disbursement.case_id == case_id, Disbursement.created_at >= day90),
        category_month_cents=by_category[category],
        requester_hotel_nights_30d=requester_nights,
        requester_amount_cents_30d=requester_amount,
        category_month_by_category=by_category if categories else {},
    )


async def _for_key(session: AsyncSession, user_id: str, key: str) -> Disbursement | None:
    return await stored_for_key(session, Disbursement, Disbursement.requester_id, user_id, key)


async def _replay(session: AsyncSession, found: Disbursement, request_hash: str | None) -> RequestResult:
    await end_replay(session, found, request_hash)
    return RequestResult(found, created=False)


async def request_disbursement(
    session: AsyncSession,
    new: NewDisbursement,
    *,
    requester: Requester,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    now: datetime | None = None,
) -> RequestResult:
    """Decide the request with the fund's current rule set; on the fast path, pend the money at once
    (409 `insufficient_funds` and nothing stored if the fund cannot cover it)."""
    _validate(new)
    items = new.lines()
    fund_id, category = new.fund_id, main_category(items)
    amount_cents = sum(i.amount_cents for i in items)
    now = now or utcnow()
    try:
        fund = await lock_fund(session, fund_id)
        if new.currency is not None and new.currency != fund.currency:
            raise Invalid("wrong_currency", f"This fund pays in {fund.currency}.", currency=fund.currency)
        if idempotency_key:
            found = await _for_key(session, requester.user_id, idempotency_key)
            if found is not None:
                return await _replay(session, found, request_hash)
        case_row = await open_case_for_org(session, new.case_code, requester.organisation_id)
        version, rules = await current_rule_set(session, fund_id)
        history = await history_facts(
            session,
            fund_id=fund_id,
            case_id=case_row.id,
            category=category,
            categories=[i.category for i in items],
            now=now,
            requester_id=requester.user_id,
        )
        decision = evaluate_items(item_facts(items), history, rules, requester_is_lead_worker=requester.is_lead_worker)
        payees = dict.fromkeys(i.payee.strip() for i in items if i.payee.strip())
        disbursement = Disbursement(
            fund_id=fund_id,
            case_id=case_row.id,
            case_code=case_row.code,
            requester_id=requester.user_id,
            requester_org_id=requester.organisation_id,
            category=category,
            amount_cents=amount_cents,
            currency=fund.currency,
            payee=", ".join(payees)[:200],
            nights=total_nights(items),
            note=new.note.strip(),
            status=decision.outcome,
            rule=decision.rule,
            approvals_needed=decision.approvals_needed,
            needs_other_org=decision.needs_other_org,
            reasons=list(decision.reasons),
            decided_by=[b.as_dict() for b in decision.decided_by],
            facts={**history.as_dict(), "requester_is_lead_worker": requester.is_lead_worker},
            rule_set_id=version.id,
            rule_set_version=version.version,
            created_at=now,
            idempotency_key=idempotency_key,
            request_hash=request_hash if idempotency_key else None,
            hold_id=new.hold_id,
            placement_id=new.placement_id,
            trips_max=new.trips,
        )
        session.add(disbursement)
        await session.flush()
        for position, item in enumerate(items):
            session.add(
                DisbursementItem(
                    disbursement_id=disbursement.id,
                    position=position,
                    category=item.category,
                    amount_cents=item.amount_cents,
                    nights=item.nights,
                    payee=item.payee.strip(),
                    note=item.note.strip(),
                )
            )
        await session.flush()
        if decision.outcome == Status.APPROVED:
            await pend(session, fund_id, amount_cents)
            disbursement.committed_cents = amount_cents
            disbursement.decided_at = now
        detail: dict[str, Any] = {
            "amount_cents": amount_cents,
            "category": category,
            "rule": decision.rule,
            "rule_set_version": version.version,
            "status": decision.outcome,
        }
        if new.trips is not None:
            detail["trips"] = new.trips
        if len(items) > 1:
            detail["items"] = [{"category": i.category, "amount_cents": i.amount_cents} for i in items]
        await record_event(session, fund, "request", requester.user_id, disbursement.id, detail, now)
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


async def lock_disbursement(session: AsyncSession, disbursement_id: str) -> tuple[Disbursement, Fund]:
    """Take the fund lock, then re-read the request: its state only changes under that lock."""
    found = await get_disbursement(session, disbursement_id)
    fund = await lock_fund(session, found.fund_id)
    fresh = (
        await session.execute(
            select(Disbursement).where(Disbursement.id == disbursement_id).execution_options(populate_existing=True)
        )
    ).scalar_one()
    return fresh, fund


async def _approval_for_key(session: AsyncSession, approver_id: str, key: str) -> Approval | None:
    return await stored_for_key(session, Approval, Approval.approver_id, approver_id, key)


async def _replay_approval(session: AsyncSession, found: Approval, request_hash: str | None) -> Disbursement:
    """The approval made with this key: answer with its request, act no more."""
    disbursement = await session.get(Disbursement, found.disbursement_id, populate_existing=True)
    await end_replay(session, found, request_hash)
    assert disbursement is not None  # an approval always has its request (foreign key)
    return disbursement


async def _reevaluate(session: AsyncSession, disbursement: Disbursement, now: datetime) -> None:
    """Decide the request again with the rule set in force now and the fund's history now: a request
    made under laxer rules (or before its requester reached a cap) needs what the rules ask today."""
    version, rules = await current_rule_set(session, disbursement.fund_id)
    facts = disbursement.facts or {}
    lead_worker = bool(facts.get("requester_is_lead_worker", False))
    items = (await items_of(session, [disbursement.id]))[disbursement.id]
    history = await history_facts(
        session,
        fund_id=disbursement.fund_id,
        case_id=disbursement.case_id,
        category=disbursement.category,
        categories=[i.category for i in items],
        now=now,
        requester_id=disbursement.requester_id,
        exclude_id=disbursement.id,
        made_before=disbursement.created_at,
    )
    decision = evaluate_items(item_facts(items), history, rules, requester_is_lead_worker=lead_worker)
    # A request waiting for an approver needs at least the one approving it, whatever the rules say now.
    needed = max(decision.approvals_needed, 1)
    if (decision.rule, needed, decision.needs_other_org, version.id) == (
        disbursement.rule,
        disbursement.approvals_needed,
        disbursement.needs_other_org,
        disbursement.rule_set_id,
    ):
        return
    disbursement.rule = decision.rule
    disbursement.approvals_needed = needed
    disbursement.needs_other_org = decision.needs_other_org
    disbursement.reasons = list(decision.reasons)
    disbursement.decided_by = [b.as_dict() for b in decision.decided_by]
    disbursement.facts = {**history.as_dict(), "requester_is_lead_worker": lead_worker}
    disbursement.rule_set_id = version.id
    disbursement.rule_set_version = version.version


async def approve(
    session: AsyncSession,
    disbursement_id: str,
    *,
    approver: Approver,
    now: datetime | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> Disbursement:
    """Add `approver`'s approval, deciding with the rule set in force now; the last one pends the money.
    With an `idempotency_key`, a replay answers with the request and approves nothing more."""
    now = now or utcnow()
    try:
        disbursement, fund = await lock_disbursement(session, disbursement_id)
        if idempotency_key:
            found = await _approval_for_key(session, approver.user_id, idempotency_key)
            if found is not None:
                if found.disbursement_id != disbursement_id:
                    await session.commit()
                    raise Invalid("idempotency_key_reused", "This Idempotency-Key was used with another request body.")
                return await _replay_approval(session, found, request_hash)
        if disbursement.requester_id == approver.user_id:
            raise Forbidden(SELF_APPROVAL, "You cannot approve your own request.")
        if disbursement.status != Status.PENDING_APPROVAL:
            raise Conflict("invalid_state", f"This request is {disbursement.status}.", state=disbursement.status)
        await _reevaluate(session, disbursement, now)
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
                disbursement_id=disbursement.id,
                approver_id=approver.user_id,
                approver_org_id=approver.organisation_id,
                at=now,
                idempotency_key=idempotency_key,
                request_hash=request_hash if idempotency_key else None,
            )
        )
        if verdict.complete:
            await pend(session, disbursement.fund_id, disbursement.amount_cents)
            disbursement.status = Status.APPROVED
            disbursement.committed_cents = disbursement.amount_cents
            disbursement.decided_at = now
        session.add(disbursement)
        await session.flush()
        detail = {
            "approvals": len(previous) + 1,
            "needed": disbursement.approvals_needed,
            "rule": disbursement.rule,
            "rule_set_version": disbursement.rule_set_version,
            "status": disbursement.status,
        }
        await record_event(session, fund, "approve", approver.user_id, disbursement.id, detail, now)
        await session.commit()
    except IntegrityError as exc:
        # Two concurrent approvals by the same person: the unique constraints keep one.
        await session.rollback()
        found = await _approval_for_key(session, approver.user_id, idempotency_key) if idempotency_key else None
        if found is not None and found.disbursement_id == disbursement_id:
            return await _replay_approval(session, found, request_hash)
        raise Conflict("already_approved", "You have already approved this request.") from exc
    except Exception:
        await session.rollback()
        raise
    return disbursement


async def reject(
    session: AsyncSession,
    disbursement_id: str,
    *,
    approver: Approver,
    reason: str,
    now: datetime | None = None,
    cancelled_card: str | None = None,
) -> Disbursement:
    reason = reason.strip()
    if not reason:
        raise Invalid("reason_required", "Say why the request is rejected; the requester sees it.")
    if len(reason) > 1000:
        raise Invalid("too_long", "Keep the reason under 1000 characters.")

    def not_own(disbursement: Disbursement) -> None:
        if disbursement.requester_id == approver.user_id:
            raise Forbidden(SELF_APPROVAL, "You cannot decide your own request; cancel it instead.")

    return await _end(
        session,
        disbursement_id,
        Status.REJECTED,
        approver.user_id,
        not_own,
        now,
        reason=reason,
        cancelled_card=cancelled_card,
    )


async def cancel(
    session: AsyncSession,
    disbursement_id: str,
    *,
    user_id: str,
    now: datetime | None = None,
    cancelled_card: str | None = None,
) -> Disbursement:
    def own(disbursement: Disbursement) -> None:
        if disbursement.requester_id != user_id:
            raise Forbidden("forbidden", "Only the requester can cancel a request.")

    return await _end(session, disbursement_id, Status.CANCELLED, user_id, own, now, cancelled_card=cancelled_card)


CARD_OPEN = "card_open"
CARD_IN_USE = "card_in_use"


async def card_in_use(session: AsyncSession, card: Card) -> bool:
    """The card spent, or holds authorizations that will: the request can only end by closing the card."""
    held = (
        await session.execute(
            select(func.coalesce(func.sum(CardAuthorization.held_cents), 0)).where(
                CardAuthorization.card_id == card.id,
                CardAuthorization.approved.is_(True),  # type: ignore[attr-defined]
                CardAuthorization.status == "pending",
            )
        )
    ).scalar_one()
    return card.captured_cents > 0 or int(held) > 0


def card_in_use_error() -> Conflict:
    return Conflict(
        CARD_IN_USE, "This request's card has already been used: close the card instead, and the request is paid."
    )


async def _close_unused_card(
    session: AsyncSession, disbursement: Disbursement, status: Status, cancelled_card: str | None, now: datetime
) -> Card | None:
    """A request ends only once its card cannot spend: the shell cancels it at Stripe first and names it in
    `cancelled_card`; an open card it did not name is a 409 `card_open`, a card already used `card_in_use`."""
    card = (
        await session.execute(
            select(Card)
            .where(Card.disbursement_id == disbursement.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if card is None or card.status != CardStatus.OPEN:
        return None
    if cancelled_card != card.stripe_card_id:
        raise Conflict(CARD_OPEN, "This request's virtual card is still open: it must be cancelled at Stripe first.")
    if await card_in_use(session, card):
        raise card_in_use_error()
    card.status = CardStatus.CLOSED
    card.closed_reason = status.value
    card.closed_at = now
    session.add(card)
    return card


async def _end(
    session: AsyncSession,
    disbursement_id: str,
    status: Status,
    actor_user_id: str,
    may_end: Callable[[Disbursement], None],
    now: datetime | None,
    *,
    reason: str = "",
    cancelled_card: str | None = None,
) -> Disbursement:
    """Under the fund lock: `may_end` refuses the actor or not, then the pending transfer, if any, is voided,
    the request ends in `status` (rejected with `reason`, or cancelled) and the audit trail says so; commits."""
    now = now or utcnow()
    try:
        disbursement, fund = await lock_disbursement(session, disbursement_id)
        may_end(disbursement)
        if disbursement.status not in (Status.PENDING_APPROVAL, Status.APPROVED):
            raise Conflict("invalid_state", f"This request is {disbursement.status}.", state=disbursement.status)
        card = await _close_unused_card(session, disbursement, status, cancelled_card, now)
        await void_pending(session, disbursement.fund_id, disbursement.committed_cents)
        disbursement.committed_cents = 0
        disbursement.status = status
        disbursement.decided_at = now
        disbursement.rejection_reason = reason
        session.add(disbursement)
        await session.flush()
        action = "reject" if status == Status.REJECTED else "cancel"
        detail: dict[str, Any] | None = {"reason": reason} if reason else None
        if card is not None:
            detail = {**(detail or {}), "card_closed": card.stripe_card_id}
        await record_event(session, fund, action, actor_user_id, disbursement.id, detail, now)
        await session.commit()
    except Exception:
        await session.rollback()
        raise
    return disbursement


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


async def preview_decision(
    session: AsyncSession, new: NewDisbursement, *, requester: Requester, now: datetime | None = None
) -> RuleDecision:
    """What the rules in force would decide for this request now, writing nothing: the form says which
    approval path a request takes before it is sent. The real decision is taken again under the fund lock."""
    _validate(new)
    now = now or utcnow()
    items = new.lines()
    case_row = await open_case_for_org(session, new.case_code, requester.organisation_id)
    _, rules = await current_rule_set(session, new.fund_id)
    history = await history_facts(
        session,
        fund_id=new.fund_id,
        case_id=case_row.id,
        category=main_category(items),
        categories=[i.category for i in items],
        now=now,
        requester_id=requester.user_id,
    )
    return evaluate_items(item_facts(items), history, rules, requester_is_lead_worker=requester.is_lead_worker)


async def case_totals_30d(session: AsyncSession, case_ids: list[str], now: datetime | None = None) -> dict[str, int]:
    """What each case asked for over the last 30 days and still counts (waiting, approved, or what was paid):
    the approver sees how much a case already took before adding to it."""
    if not case_ids:
        return {}
    since = (now or utcnow()) - timedelta(days=30)
    counted = case((Disbursement.status == Status.PAID.value, Disbursement.paid_cents), else_=Disbursement.amount_cents)
    rows = await session.execute(
        select(Disbursement.case_id, func.sum(counted))
        .where(
            Disbursement.case_id.in_(case_ids),  # type: ignore[attr-defined]
            Disbursement.status.in_(ACTIVE),  # type: ignore[attr-defined]
            Disbursement.created_at >= since,  # type: ignore[operator]
        )
        .group_by(Disbursement.case_id)
    )
    return {case_id: int(total or 0) for case_id, total in rows.all()}
