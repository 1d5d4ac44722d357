"""Versioned rule sets per fund: read the current one, save a new version, preview a draft on recent requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit import record_event
from ledger.errors import NotFound
from ledger.funds import lock_fund
from ledger.models import Disbursement, RuleSetVersion, Status
from ledger.rules import (
    FAST_PATH,
    HistoryFacts,
    RequestFacts,
    RuleDecision,
    RuleSet,
    evaluate,
    parse_rules,
    rules_to_document,
)


async def current_rule_set(session: AsyncSession, fund_id: str) -> tuple[RuleSetVersion, RuleSet]:
    version = (
        await session.execute(
            select(RuleSetVersion)
            .where(RuleSetVersion.fund_id == fund_id)
            .order_by(RuleSetVersion.version.desc())  # type: ignore[attr-defined]
            .limit(1)
        )
    ).scalar_one_or_none()
    if version is None:
        raise NotFound("rule_set_not_found", "This fund has no rule set.")
    return version, parse_rules(version.document)


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
    now: datetime | None = None,
) -> RuleSetVersion:
    """Validate and store as the next version; the change is an audit event. Old versions stay."""
    rules = parse_rules(document)
    fund = await lock_fund(session, fund_id)
    latest = (
        await session.execute(select(func.max(RuleSetVersion.version)).where(RuleSetVersion.fund_id == fund_id))
    ).scalar_one()
    version = RuleSetVersion(
        fund_id=fund_id,
        version=(latest or 0) + 1,
        document=rules_to_document(rules),
        created_by_user_id=actor_user_id,
    )
    if now is not None:
        version.created_at = now
    session.add(version)
    await session.flush()
    detail = {"version": version.version, "document": version.document}
    await record_event(session, fund, "rule_set", actor_user_id, detail=detail, at=now)
    await session.commit()
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


def replay(disbursement: Disbursement, rules: RuleSet) -> RuleDecision:
    """What `rules` would have decided, from the facts stored with the request when it was made."""
    facts = disbursement.facts or {}
    request = RequestFacts(
        category=disbursement.category,
        amount_cents=disbursement.amount_cents,
        nights=disbursement.nights,
        requester_id=disbursement.requester_id,
        requester_organisation_id=disbursement.requester_org_id,
        requester_is_lead_worker=bool(facts.get("requester_is_lead_worker", False)),
    )
    history = HistoryFacts(
        case_hotel_nights_30d=int(facts.get("case_hotel_nights_30d", 0)),
        case_amount_cents_90d=int(facts.get("case_amount_cents_90d", 0)),
        category_month_cents=int(facts.get("category_month_cents", 0)),
    )
    return evaluate(request, history, rules)


async def preview_rule_set(session: AsyncSession, fund_id: str, rules: RuleSet, limit: int = 25) -> list[PreviewRow]:
    rows = await session.execute(
        select(Disbursement)
        .where(Disbursement.fund_id == fund_id)
        .order_by(Disbursement.created_at.desc())  # type: ignore[attr-defined]
        .limit(limit)
    )
    result = []
    for d in rows.scalars().all():
        outcome = Status.APPROVED if d.rule == FAST_PATH else Status.PENDING_APPROVAL
        was = RuleDecision(outcome.value, d.rule, d.approvals_needed, d.needs_other_org, tuple(d.reasons))
        result.append(PreviewRow(d, was, replay(d, rules)))
    return result
