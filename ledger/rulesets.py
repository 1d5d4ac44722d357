"""Versioned rule sets per fund: read the one in force, propose a new version, approve it (a second person),
preview a draft on recent requests. Settings' hard ceilings bound every version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit import record_event
from ledger.errors import Conflict, Forbidden, Invalid, NotFound
from ledger.funds import lock_fund
from ledger.models import Disbursement, DisbursementItem, RuleSetVersion, Status
from ledger.rules import (
    FAST_PATH,
    Because,
    HistoryFacts,
    ItemFacts,
    RuleDecision,
    RuleSet,
    evaluate_items,
    parse_rules,
    rules_to_document,
)
from ledger.timeutil import utcnow


@dataclass(frozen=True)
class RuleCeilings:
    """Hard ceilings from the settings: no rule set, however approved, goes above them."""

    fast_path_cents_max: int
    single_approval_cents_max: int


def check_ceilings(rules: RuleSet, ceilings: RuleCeilings | None) -> RuleSet:
    """Invalid naming each limit above its ceiling; the rules unchanged otherwise."""
    if ceilings is None:
        return rules
    problems = []
    if rules.fast_path.amount_cents_max > ceilings.fast_path_cents_max:
        problems.append(f"fast_path.amount_cents_max cannot exceed {ceilings.fast_path_cents_max}")
    if rules.single_approval.amount_cents_max > ceilings.single_approval_cents_max:
        problems.append(f"single_approval.amount_cents_max cannot exceed {ceilings.single_approval_cents_max}")
    if problems:
        raise Invalid("rule_above_ceiling", "The rule set is not valid: " + "; ".join(problems) + ".")
    return rules


def _newest(fund_id: str):  # type: ignore[no-untyped-def]
    return (
        select(RuleSetVersion)
        .where(RuleSetVersion.fund_id == fund_id)
        .order_by(RuleSetVersion.version.desc())  # type: ignore[attr-defined]
        .limit(1)
    )


async def current_rule_set(session: AsyncSession, fund_id: str) -> tuple[RuleSetVersion, RuleSet]:
    """The rule set in force: the newest version a second person approved."""
    version = (
        await session.execute(_newest(fund_id).where(RuleSetVersion.approved_at.is_not(None)))  # type: ignore[union-attr]
    ).scalar_one_or_none()
    if version is None:
        raise NotFound("rule_set_not_found", "This fund has no rule set.")
    return version, parse_rules(version.document)


async def pending_rule_set(session: AsyncSession, fund_id: str) -> RuleSetVersion | None:
    """The newest version when it waits for its approval (a newer save replaces an older pending one)."""
    newest = (await session.execute(_newest(fund_id))).scalar_one_or_none()
    return newest if newest is not None and newest.approved_at is None else None


async def rule_set_versions(session: AsyncSession, fund_id: str) -> list[RuleSetVersion]:
    rows = await session.execute(
        select(RuleSetVersion).where(RuleSetVersion.fund_id == fund_id).order_by(RuleSetVersion.version.desc())  # type: ignore[attr-defined]
    )
    return list(rows.scalars().all())


async def save_rule_set(
    session: AsyncSession,
    fund_id: str,
    document: str | bytes | dict[str, Any],
    *,
    actor_user_id: str,
    actor_org_id: str | None = None,
    ceilings: RuleCeilings | None = None,
    now: datetime | None = None,
) -> RuleSetVersion:
    """Validate and store as the next version, pending: it takes effect only when a second person approves
    it (`approve_rule_set`); until then the version in force stays. The proposal is an audit event."""
    rules = check_ceilings(parse_rules(document), ceilings)
    fund = await lock_fund(session, fund_id)
    latest = (
        await session.execute(select(func.max(RuleSetVersion.version)).where(RuleSetVersion.fund_id == fund_id))
    ).scalar_one()
    version = RuleSetVersion(
        fund_id=fund_id,
        version=(latest or 0) + 1,
        document=rules_to_document(rules),
        created_by_user_id=actor_user_id,
        created_by_org_id=actor_org_id,
    )
    if now is not None:
        version.created_at = now
    session.add(version)
    await session.flush()
    detail = {"version": version.version, "document": version.document, "state": "pending"}
    await record_event(session, fund, "rule_set", actor_user_id, detail=detail, at=now)
    await session.commit()
    return version


async def approve_rule_set(
    session: AsyncSession,
    fund_id: str,
    version_number: int,
    *,
    approver_user_id: str,
    approver_org_id: str,
    approver_is_admin: bool,
    ceilings: RuleCeilings | None = None,
    now: datetime | None = None,
) -> RuleSetVersion:
    """Put a pending version in force. The approver is not its author, and is another admin or (the shell
    says which) a fund approver of another organisation than the author's. Only the newest version can be
    approved; the ceilings are checked again, as the settings may have been lowered since it was saved."""
    try:
        fund = await lock_fund(session, fund_id)
        version = (
            await session.execute(
                select(RuleSetVersion)
                .where(RuleSetVersion.fund_id == fund_id, RuleSetVersion.version == version_number)
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        if version is None:
            raise NotFound("rule_set_not_found", "No such rule set version.")
        if version.approved_at is not None:
            raise Conflict("rule_set_in_force", "This version was approved already.")
        newest = (
            await session.execute(select(func.max(RuleSetVersion.version)).where(RuleSetVersion.fund_id == fund_id))
        ).scalar_one()
        if newest != version.version:
            raise Conflict("rule_set_superseded", "A newer version was saved since; approve that one.")
        if version.created_by_user_id == approver_user_id:
            raise Forbidden("own_rule_set", "A second person approves a rule set, not its author.")
        if not approver_is_admin and (version.created_by_org_id in (None, approver_org_id)):
            raise Forbidden(
                "same_organisation", "A fund approver of another organisation than the author's approves it."
            )
        check_ceilings(parse_rules(version.document), ceilings)
        version.approved_by_user_id = approver_user_id
        version.approved_at = now or utcnow()
        session.add(version)
        await session.flush()
        detail = {"version": version.version, "author": version.created_by_user_id, "state": "in_force"}
        await record_event(session, fund, "rule_set_approved", approver_user_id, detail=detail, at=now)
        await session.commit()
    except Exception:
        await session.rollback()
        raise
    return version


@dataclass(frozen=True)
class PreviewRow:
    disbursement: Disbursement
    was: RuleDecision
    would_be: RuleDecision

    @property
    def changed(self) -> bool:
        return (self.was.rule, self.was.approvals_needed, self.was.needs_other_org) != (
            self.would_be.rule,
            self.would_be.approvals_needed,
            self.would_be.needs_other_org,
        )


def replay(disbursement: Disbursement, rules: RuleSet, items: list[DisbursementItem] | None = None) -> RuleDecision:
    """What `rules` would have decided, from the facts stored with the request when it was made (and its
    items; without them, the request as one item)."""
    facts = disbursement.facts or {}
    if items:
        lines = tuple(ItemFacts(i.category, i.amount_cents, i.nights) for i in items)
    else:
        lines = (ItemFacts(disbursement.category, disbursement.amount_cents, disbursement.nights),)
    by_category = facts.get("category_month_by_category") or {}
    history = HistoryFacts(
        case_hotel_nights_30d=int(facts.get("case_hotel_nights_30d", 0)),
        case_amount_cents_90d=int(facts.get("case_amount_cents_90d", 0)),
        category_month_cents=int(facts.get("category_month_cents", 0)),
        requester_hotel_nights_30d=int(facts.get("requester_hotel_nights_30d", 0)),
        requester_amount_cents_30d=int(facts.get("requester_amount_cents_30d", 0)),
        category_month_by_category={str(k): int(v) for k, v in by_category.items()},
    )
    lead_worker = bool(facts.get("requester_is_lead_worker", False))
    return evaluate_items(lines, history, rules, requester_is_lead_worker=lead_worker)


async def preview_rule_set(session: AsyncSession, fund_id: str, rules: RuleSet, limit: int = 25) -> list[PreviewRow]:
    rows = await session.execute(
        select(Disbursement)
        .where(Disbursement.fund_id == fund_id)
        .order_by(Disbursement.created_at.desc())  # type: ignore[attr-defined]
        .limit(limit)
    )
    found = list(rows.scalars().all())
    items: dict[str, list[DisbursementItem]] = {}
    if found:
        listed = await session.execute(
            select(DisbursementItem)
            .where(DisbursementItem.disbursement_id.in_([d.id for d in found]))  # type: ignore[attr-defined]
            .order_by(DisbursementItem.position)
        )
        for item in listed.scalars().all():
            items.setdefault(item.disbursement_id, []).append(item)
    result = []
    for d in found:
        outcome = Status.APPROVED if d.rule == FAST_PATH else Status.PENDING_APPROVAL
        told = tuple(Because(str(b.get("reason", "")), b.get("item")) for b in d.decided_by or [])
        was = RuleDecision(outcome.value, d.rule, d.approvals_needed, d.needs_other_org, tuple(d.reasons), told)
        result.append(PreviewRow(d, was, replay(d, rules, items.get(d.id))))
    return result
