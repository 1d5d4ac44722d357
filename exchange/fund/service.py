"""The fund's operations in the web shell for one request's user, shared by the API and the pages.

Each one says who the user is to the ledger, checks what the ledger leaves to the shell (who may pay), calls
`ledger` and publishes the change to the live stream. exchange/fund/api.py and pages.py reach it as the
`service` dependency (`SERVICE`) and call nothing else for behaviour. The Stripe feature pays and reads
requests through the module-level `pay_as` and `visible_disbursement`. The money rules themselves (approval
paths, pending transfers, the journal) are the ledger's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from litestar import Request
from litestar.channels import ChannelsPlugin
from litestar.di import Provide
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.accounts.models import Organisation, Role, User
from exchange.fund.schemas import Period
from exchange.fund.transport import beds_served, check_bed_link
from exchange.home.live import publish_approvals_changed
from exchange.live.events import Audience, publish
from exchange.registry import CardIssuerFactory
from exchange.settings import Settings
from exchange.web.personal_data import refuse_personal_data
from ledger import cards, cases, deposits, disbursements, funds, journal, payments, reports, rulesets, trips, verify
from ledger.deposits import DepositResult
from ledger.disbursements import LedgerViewer, NewDisbursement, Requester, RequestResult
from ledger.errors import Conflict, Forbidden, Invalid, NotFound
from ledger.funds import FundSummary
from ledger.journal import EntryView
from ledger.models import Approval, Case, Disbursement, DisbursementItem, Fund, Payment, RuleSetVersion, Status
from ledger.payments import STRIPE_CARD, CardIssuer, PaymentResult
from ledger.reports import SpendingReport
from ledger.rules import Approver, RuleDecision, RuleSet, parse_rules
from ledger.rulesets import PreviewRow, RuleCeilings
from ledger.stripe_models import CardStatus
from ledger.verify import FundAudit

DISBURSEMENT_EVENT = "ledger.disbursement"


# Who the user is, as the ledger needs to know it.
def ledger_viewer(user: User) -> LedgerViewer:
    return LedgerViewer(
        user_id=user.id,
        organisation_id=user.organisation_id,
        is_approver=user.has(Role.FUND_APPROVER),
        is_auditor=user.has(Role.AUDITOR),
    )


def requester_of(user: User) -> Requester:
    return Requester(user_id=user.id, organisation_id=user.organisation_id, is_lead_worker=user.lead_worker)


def approver_of(user: User) -> Approver:
    return Approver(user_id=user.id, organisation_id=user.organisation_id)


def card_issuer(settings: Settings, factories: Sequence[CardIssuerFactory]) -> CardIssuer | None:
    """The Stripe seam: the first configured issuer of the plugin's list, or None (payments are then manual
    and `stripe_card` answers 409 `stripe_not_configured`)."""
    if not settings.stripe_enabled:
        return None
    for factory in factories:
        issuer = factory(settings)
        if issuer is not None:
            return issuer
    return None


def item_summary(item: DisbursementItem) -> dict[str, Any]:
    return {
        "category": item.category,
        "amount_cents": item.amount_cents,
        "nights": item.nights,
        "payee": item.payee,
        "note": item.note,
    }


# A disbursement as the live stream carries it and the pages' status cards and inbox items show it.
def disbursement_summary(d: Disbursement, approvals: int, items: Sequence[DisbursementItem] = ()) -> dict[str, Any]:
    return {
        "id": d.id,
        "fund_id": d.fund_id,
        "case_code": d.case_code,
        "category": d.category,
        "amount_cents": d.amount_cents,
        "currency": d.currency,
        "payee": d.payee,
        "nights": d.nights,
        "status": d.status,
        "rule": d.rule,
        "approvals_needed": d.approvals_needed,
        "approvals": approvals,
        "needs_other_org": d.needs_other_org,
        "requester_id": d.requester_id,
        "paid_cents": d.paid_cents,
        "rejection_reason": d.rejection_reason,
        "created_at": d.created_at.isoformat(),
        # Several items are listed; one item is the request itself, told by the fields above.
        "items": [item_summary(i) for i in items],
        "decided_by": list(d.decided_by or []),
    }


async def summaries(db: AsyncSession, found: Sequence[Disbursement]) -> list[dict[str, Any]]:
    """Each request as `disbursement_summary` has it, with what an approver needs to decide it: who asked
    and from which organisation, the note, why the rule applies, who approved so far, the case's total over
    30 days. A few queries for the whole list, not per request."""
    if not found:
        return []
    ids = [d.id for d in found]
    rows = await db.execute(
        select(Approval).where(Approval.disbursement_id.in_(ids)).order_by(Approval.id)  # type: ignore[attr-defined]
    )
    approvals: dict[str, list[Approval]] = {}
    for a in rows.scalars().all():
        approvals.setdefault(a.disbursement_id, []).append(a)
    user_ids = {d.requester_id for d in found} | {a.approver_id for found_ in approvals.values() for a in found_}
    users = {u.id: u for u in (await db.execute(select(User).where(User.id.in_(user_ids)))).scalars().all()}  # type: ignore[attr-defined]
    org_ids = {d.requester_org_id for d in found}
    orgs = {
        o.id: o.name
        for o in (await db.execute(select(Organisation).where(Organisation.id.in_(org_ids)))).scalars().all()  # type: ignore[attr-defined]
    }
    totals = await disbursements.case_totals_30d(db, list({d.case_id for d in found}))
    items = await disbursements.items_of(db, ids)
    served = await beds_served(db, found)

    def name(user_id: str) -> str:
        user = users.get(user_id)
        return (user.display_name or user.username) if user else ""

    result = []
    for d in found:
        mine = approvals.get(d.id, [])
        summary = disbursement_summary(d, len(mine), items.get(d.id, []))
        summary.update(
            requester_name=name(d.requester_id),
            requester_org=orgs.get(d.requester_org_id, ""),
            note=d.note,
            reasons=list(d.reasons or []),
            approvers=[name(a.approver_id) for a in mine],
            case_total_30d_cents=totals.get(d.case_id, 0),
            serves=served.get(d.id),
            trips_max=d.trips_max,
            trips_drawn=d.trips_drawn,
        )
        result.append(summary)
    return result


async def summary_of(db: AsyncSession, d: Disbursement) -> dict[str, Any]:
    return (await summaries(db, [d]))[0]


async def publish_disbursement(
    channels: ChannelsPlugin, db: AsyncSession, d: Disbursement, change: str, by: str | None = None
) -> None:
    """Only to fund approvers and the requester: a request's payee and case code are nobody else's business.
    `by`: who acted, whose own page already shows the change from its answer."""
    publish(
        channels,
        DISBURSEMENT_EVENT,
        {"type": DISBURSEMENT_EVENT, "change": change, "disbursement": await summary_of(db, d), "by": by},
        Audience(users=(d.requester_id,), roles=(Role.FUND_APPROVER.value,)),
    )
    # The navigation's count of waiting requests (exchange/home/live.py): every approver's page reads it again,
    # unless the change cannot move it (a request approved at once on the fast path never waited).
    if not (change == "created" and d.status != Status.PENDING_APPROVAL):
        publish_approvals_changed(channels)


async def visible_disbursement(db: AsyncSession, user: User, disbursement_id: str) -> Disbursement:
    """404 for whoever may not see the request, so its existence is not revealed either."""
    return await disbursements.visible_disbursement(db, disbursement_id, ledger_viewer(user))


async def check_payer(db: AsyncSession, user: User, disbursement_id: str, method: str) -> None:
    """Who may pay, before anything about the input: 404 for whoever may not see the request; approvers and
    the requester may pay; nobody records the manual payment of their own request (separation of duties: a
    card is limited to the approved amount and the category's merchants, a manual payment is only a record)."""
    viewer = ledger_viewer(user)
    found = await disbursements.visible_disbursement(db, disbursement_id, viewer)
    if not (viewer.is_approver or found.requester_id == user.id):
        raise Forbidden("forbidden", "Only an approver or the requester records a payment.")
    if method != STRIPE_CARD and found.requester_id == user.id:
        raise Forbidden("own_request", "Someone else records the payment of your own request.")
    if found.trips_max is not None:
        raise Conflict(trips.NOT_RECURRING, "A recurring travel request is paid trip by trip: draw a trip instead.")


async def pay_as(
    db: AsyncSession,
    user: User,
    disbursement_id: str,
    *,
    method: str,
    amount_cents: int | None,
    reference: str,
    issuer: CardIssuer | None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> PaymentResult:
    """Approvers and the requester may pay; anyone else does not see the request at all."""
    await check_payer(db, user, disbursement_id, method)
    await db.rollback()  # end the read; the payment takes the fund lock in a transaction of its own
    return await payments.pay(
        db,
        disbursement_id,
        method=method,
        amount_cents=amount_cents,
        reference=reference,
        actor_user_id=user.id,
        card_issuer=issuer,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )


@dataclass
class FundService:
    db: AsyncSession
    channels: ChannelsPlugin
    settings: Settings
    user: User
    card_issuers: Sequence[CardIssuerFactory] = ()

    async def summary_of(self, d: Disbursement) -> dict[str, Any]:
        return await summary_of(self.db, d)

    async def summaries(self, found: Sequence[Disbursement]) -> list[dict[str, Any]]:
        return await summaries(self.db, found)

    async def _published(self, d: Disbursement, change: str = "status", *, in_place: bool = False) -> Disbursement:
        """`in_place`: the change was made from the inbox, whose answer moves the request on that page."""
        await publish_disbursement(self.channels, self.db, d, change, by=self.user.id if in_place else None)
        return d

    # --- cases ---------------------------------------------------------------------------------------------

    async def create_case(self, *, idempotency_key: str | None = None, request_hash: str | None = None) -> Case:
        """A new case of the user's organisation, at most `cases_per_user_per_day` a day (409 `case_limit`)."""
        result = await cases.open_case(
            self.db,
            lead_org_id=self.user.organisation_id,
            created_by_user_id=self.user.id,
            daily_limit=self.settings.cases_per_user_per_day,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )
        return result.case

    async def cases(self) -> list[Case]:
        return await cases.cases_for_org(self.db, self.user.organisation_id)

    async def open_cases(self) -> list[Case]:
        """The cases a request may go to: the organisation's, without the closed ones."""
        return [c for c in await self.cases() if c.closed_at is None]

    async def close_case(self, code: str) -> Case:
        """Close a case of the user's organisation (404 for any other): it takes no new request or hold."""
        return await cases.close_case(self.db, code, self.user.organisation_id, actor_user_id=self.user.id)

    # --- funds, the journal and its checks -----------------------------------------------------------------

    async def fund_choice(self, fund_id: str | None) -> tuple[list[Fund], Fund | None]:
        """Every fund, and the one asked for (the first when none or an unknown one is)."""
        all_funds = await funds.list_funds(self.db)
        return all_funds, next((f for f in all_funds if f.id == fund_id), all_funds[0] if all_funds else None)

    async def fund_summaries(self) -> list[FundSummary]:
        return [await funds.fund_summary(self.db, f.id) for f in await funds.list_funds(self.db)]

    async def fund_summary(self, fund_id: str) -> FundSummary:
        return await funds.fund_summary(self.db, fund_id)

    async def deposit(
        self, fund_id: str, *, amount_cents: int, source: str, note: str, idempotency_key: str | None, request_hash: str
    ) -> DepositResult:
        refuse_personal_data("note", note)
        self.check_amount(amount_cents)
        return await deposits.deposit(
            self.db,
            fund_id,
            amount_cents=amount_cents,
            source=source,
            note=note,
            actor_user_id=self.user.id,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )

    async def journal(self, fund_id: str, period: Period, limit: int | None = None) -> tuple[Fund, list[EntryView]]:
        """The fund and its entries posted in the period, newest first (404 for an unknown fund)."""
        fund = await funds.get_fund(self.db, fund_id)
        return fund, await journal.list_entries(self.db, fund_id, start=period.start, end=period.end, limit=limit)

    async def audit(self, fund_id: str) -> FundAudit:
        return await verify.verify_fund(self.db, fund_id, public_key=self.settings.ledger_public_key)

    async def spending(self, fund_id: str) -> SpendingReport:
        return await reports.spending_report(self.db, fund_id)

    # --- disbursements: request, see, decide, cancel, pay; each change is published ------------------------

    async def request_disbursement(
        self, new: NewDisbursement, *, idempotency_key: str | None = None, request_hash: str | None = None
    ) -> RequestResult:
        self.check_request(new)
        if new.hold_id is not None or new.placement_id is not None:
            await check_bed_link(self.db, self.user, new)
            await self.db.rollback()  # end the read; the request takes the fund lock in a transaction of its own
        result = await disbursements.request_disbursement(
            self.db, new, requester=requester_of(self.user), idempotency_key=idempotency_key, request_hash=request_hash
        )
        if result.created:
            await self._published(result.disbursement, "created")
        return result

    async def approval_path(self, new: NewDisbursement) -> RuleDecision:
        """Which approval path the request would take now, and why; writes nothing."""
        self.check_request(new)
        return await disbursements.preview_decision(self.db, new, requester=requester_of(self.user))

    async def disbursement(self, disbursement_id: str) -> Disbursement:
        return await visible_disbursement(self.db, self.user, disbursement_id)

    async def details(self, d: Disbursement) -> tuple[list[Approval], Payment | None, list[DisbursementItem]]:
        approvals = await disbursements.approvals_of(self.db, d.id)
        items = (await disbursements.items_of(self.db, [d.id]))[d.id]
        return approvals, await payments.payment_of(self.db, d.id), items

    async def bed_served(self, d: Disbursement) -> dict[str, Any] | None:
        """The city of the bed the request serves, if it names one."""
        return (await beds_served(self.db, [d])).get(d.id)

    async def draw_trip(
        self,
        disbursement_id: str,
        *,
        amount_cents: int,
        trip_date: date,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        after_trips: int | None = None,
    ) -> trips.TripResult:
        """The requester or an approver draws a trip (404 for whoever may not see the request)."""
        viewer = ledger_viewer(self.user)
        found = await disbursements.visible_disbursement(self.db, disbursement_id, viewer)
        if not (viewer.is_approver or found.requester_id == self.user.id):
            raise Forbidden("forbidden", "Only the requester or an approver draws a trip.")
        self.check_amount(amount_cents)
        await self.db.rollback()  # end the read; the draw takes the fund lock in a transaction of its own
        result = await trips.draw_trip(
            self.db,
            disbursement_id,
            amount_cents=amount_cents,
            trip_date=trip_date,
            actor_user_id=self.user.id,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            after_trips=after_trips,
        )
        if result.created:
            await self._published(result.disbursement)
        return result

    async def my_requests(self, limit: int = 20) -> list[Disbursement]:
        return await disbursements.list_disbursements(self.db, requester_id=self.user.id, limit=limit)

    async def inbox(self) -> tuple[list[Disbursement], list[Disbursement]]:
        """What waits for an approval, and what was approved and is not paid yet."""
        waiting = await disbursements.list_disbursements(self.db, status=Status.PENDING_APPROVAL, limit=200)
        approved = await disbursements.list_disbursements(self.db, status=Status.APPROVED, limit=50)
        return waiting, approved

    async def approve(
        self,
        disbursement_id: str,
        *,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        in_place: bool = False,
    ) -> Disbursement:
        return await self._published(
            await disbursements.approve(
                self.db,
                disbursement_id,
                approver=approver_of(self.user),
                idempotency_key=idempotency_key,
                request_hash=request_hash,
            ),
            in_place=in_place,
        )

    async def reject(self, disbursement_id: str, reason: str, *, in_place: bool = False) -> Disbursement:
        refuse_personal_data("reason", reason)
        found = await self.disbursement(disbursement_id)
        cancelled = None
        if found.requester_id != self.user.id:  # the ledger refuses one's own request, before any Stripe call
            cancelled = await self._cancel_card_first(found)
        return await self._published(
            await disbursements.reject(
                self.db, disbursement_id, approver=approver_of(self.user), reason=reason, cancelled_card=cancelled
            ),
            in_place=in_place,
        )

    async def cancel(self, disbursement_id: str) -> Disbursement:
        found = await self.disbursement(disbursement_id)
        cancelled = await self._cancel_card_first(found) if found.requester_id == self.user.id else None
        return await self._published(
            await disbursements.cancel(self.db, disbursement_id, user_id=self.user.id, cancelled_card=cancelled)
        )

    async def _cancel_card_first(self, d: Disbursement) -> str | None:
        """Before an approved request ends, its open virtual card is cancelled at Stripe, so that nothing can
        spend on it afterwards; the Stripe id of the card cancelled, or None when it has no open card. 409
        `card_in_use` when the card has spent (close the card instead), `card_open` without Stripe."""
        if d.status != Status.APPROVED:
            return None
        card = await cards.card_for_disbursement(self.db, d.id)
        if card is None or card.status != CardStatus.OPEN:
            return None
        if await disbursements.card_in_use(self.db, card):
            raise disbursements.card_in_use_error()
        issuer = card_issuer(self.settings, self.card_issuers)
        if issuer is None:
            raise Conflict(
                disbursements.CARD_OPEN,
                "This request's virtual card is still open and Stripe is not set up here to cancel it.",
            )
        stripe_card_id = card.stripe_card_id
        await self.db.rollback()  # no transaction stays open across the Stripe call
        await issuer.cancel_card(stripe_card_id)
        return stripe_card_id

    def check_request(self, new: NewDisbursement) -> None:
        """No personal data in a payee or a note, no amount above the ceiling: each item's, and the total's.
        An item's refusal names its `path` (`items[1].payee`)."""
        if not new.items:
            refuse_personal_data("payee", new.payee)
            refuse_personal_data("note", new.note)
            self.check_amount(new.amount_cents)
            return
        refuse_personal_data("note", new.note)
        for position, item in enumerate(new.items):
            refuse_personal_data(f"items[{position}].payee", item.payee)
            refuse_personal_data(f"items[{position}].note", item.note)
            try:
                self.check_amount(item.amount_cents)
            except Invalid as exc:
                raise Invalid(
                    exc.code, exc.detail, **exc.extra, path=f"items[{position}].amount_cents", item=position
                ) from None
        self.check_amount(sum(i.amount_cents for i in new.items))

    def check_amount(self, amount_cents: int | None) -> None:
        """No money field goes above the `max_amount_cents` setting (the API's and the forms' ceiling)."""
        ceiling = self.settings.max_amount_cents
        if amount_cents is not None and amount_cents > ceiling:
            raise Invalid(
                "amount_too_large",
                f"The amount is above the most this exchange accepts ({ceiling} cents).",
                max_cents=ceiling,
            )

    async def pay(
        self,
        disbursement_id: str,
        *,
        method: str,
        amount_cents: int | None,
        reference: str,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
    ) -> PaymentResult:
        await check_payer(self.db, self.user, disbursement_id, method)  # who may pay comes before the input
        self.check_amount(amount_cents)
        result = await pay_as(
            self.db,
            self.user,
            disbursement_id,
            method=method,
            amount_cents=amount_cents,
            reference=reference,
            issuer=card_issuer(self.settings, self.card_issuers) if method == STRIPE_CARD else None,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )
        await self._published(result.disbursement)
        return result

    # --- rule sets -----------------------------------------------------------------------------------------

    def rule_ceilings(self) -> RuleCeilings:
        return RuleCeilings(
            fast_path_cents_max=self.settings.rules_fast_path_ceiling_cents,
            single_approval_cents_max=self.settings.rules_single_approval_ceiling_cents,
        )

    async def rules(self, fund_id: str) -> tuple[RuleSetVersion, RuleSet, list[RuleSetVersion]]:
        """The version in force and its rules, and every version, newest first."""
        version, rules = await rulesets.current_rule_set(self.db, fund_id)
        return version, rules, await rulesets.rule_set_versions(self.db, fund_id)

    async def pending_rules(self, fund_id: str) -> RuleSetVersion | None:
        """The version waiting for a second person's approval, if any."""
        return await rulesets.pending_rule_set(self.db, fund_id)

    def may_approve_rules(self, pending: RuleSetVersion) -> bool:
        """Another admin, or a fund approver of another organisation than the author's."""
        if pending.created_by_user_id == self.user.id:
            return False
        if self.user.has(Role.NETWORK_ADMIN):
            return True
        return self.user.has(Role.FUND_APPROVER) and pending.created_by_org_id not in (None, self.user.organisation_id)

    async def preview_rules(self, fund_id: str, document: str) -> list[PreviewRow]:
        """What the draft would have decided for the fund's recent requests; `Invalid` names what is wrong."""
        rules = rulesets.check_ceilings(parse_rules(document), self.rule_ceilings())
        return await rulesets.preview_rule_set(self.db, fund_id, rules)

    async def save_rules(self, fund_id: str, document: str) -> RuleSetVersion:
        """A new version, pending until a second person approves it (`approve_rules`)."""
        return await rulesets.save_rule_set(
            self.db,
            fund_id,
            document,
            actor_user_id=self.user.id,
            actor_org_id=self.user.organisation_id,
            ceilings=self.rule_ceilings(),
        )

    async def restore_rules(self, fund_id: str, version: int) -> RuleSetVersion:
        """An older version's rules saved again as a new version, which waits for a second person like any."""
        for found in await rulesets.rule_set_versions(self.db, fund_id):
            if found.version == version:
                return await self.save_rules(fund_id, json.dumps(found.document))
        raise NotFound("rule_set_not_found", "No such rule set version.")

    async def user_names(self, user_ids: set[str]) -> dict[str, str]:
        """Who made or approved a version, as people are called on the pages."""
        if not user_ids:
            return {}
        rows = await self.db.execute(select(User).where(User.id.in_(user_ids)))  # type: ignore[attr-defined]
        return {u.id: u.display_name or u.username for u in rows.scalars().all()}

    async def approve_rules(self, fund_id: str, version: int) -> RuleSetVersion:
        if not (self.user.has(Role.NETWORK_ADMIN) or self.user.has(Role.FUND_APPROVER)):
            raise Forbidden("forbidden", "Only an admin or a fund approver approves a rule set.")
        return await rulesets.approve_rule_set(
            self.db,
            fund_id,
            version,
            approver_user_id=self.user.id,
            approver_org_id=self.user.organisation_id,
            approver_is_admin=self.user.has(Role.NETWORK_ADMIN),
            ceilings=self.rule_ceilings(),
        )


def provide_fund_service(
    request: Request[User, str, object], db: AsyncSession, channels: ChannelsPlugin, settings: Settings
) -> FundService:
    return FundService(db, channels, settings, request.user, request.app.state.registry.card_issuers)


# The fund's controllers declare this: their handlers take `service: FundService`.
SERVICE = {"service": Provide(provide_fund_service, sync_to_thread=False)}
