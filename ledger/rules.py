"""Approval rules as data, and their pure evaluation.

Nothing here does I/O: `evaluate(request, history, rules)` and `check_approval(...)` are functions of
their arguments only, so the property tests can run them thousands of times.

Rule ids (what a disbursement records in `rule`):
- `fast_path`: rule 1, approved at once;
- `single_approval`: rule 2, one approver who is not the requester;
- `dual_approval`: rule 3, two distinct approvers, at least one from another organisation than the
  requester's. Caps (rule 4) escalate to rule 3.
Rule 5 (no self-approval, no overcommit) holds for every rule: `check_approval` and the fund's balance row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ledger.errors import Invalid
from ledger.models import CATEGORIES, Category

FAST_PATH = "fast_path"
SINGLE_APPROVAL = "single_approval"
DUAL_APPROVAL = "dual_approval"


class _Doc(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class FastPath(_Doc):
    categories: tuple[str, ...] = (Category.CALLING_CARD.value, Category.TRAVEL_LOCAL.value, Category.BASIC_NEEDS.value)
    amount_cents_max: int = 25_000
    lead_worker_required: bool = True


class SingleApproval(_Doc):
    amount_cents_max: int = 150_000


class DualApproval(_Doc):
    categories: tuple[str, ...] = (Category.TRAVEL_INTERNATIONAL.value,)
    other_org_required: bool = True


class Caps(_Doc):
    hotel_nights_per_case_30d_max: int = 7
    case_amount_cents_90d_max: int = 500_000
    # Per requester, over every case they lead: opening new cases does not reset these.
    requester_hotel_nights_30d_max: int = 14
    requester_amount_cents_30d_max: int = 1_000_000
    # A category missing here has no monthly budget.
    category_monthly_budget_cents: dict[str, int] = msgspec.field(
        default_factory=lambda: {
            Category.TRAVEL_LOCAL.value: 150_000,
            Category.TRAVEL_INTERPROVINCIAL.value: 400_000,
            Category.TRAVEL_INTERNATIONAL.value: 400_000,
            Category.HOTEL.value: 600_000,
            Category.CALLING_CARD.value: 50_000,
            Category.BASIC_NEEDS.value: 200_000,
            Category.INTERPRETATION.value: 200_000,
            Category.OTHER.value: 200_000,
        }
    )


class RuleSet(_Doc):
    """The document an admin edits. Every field has the DESIGN.md default."""

    fast_path: FastPath = msgspec.field(default_factory=FastPath)
    single_approval: SingleApproval = msgspec.field(default_factory=SingleApproval)
    dual_approval: DualApproval = msgspec.field(default_factory=DualApproval)
    caps: Caps = msgspec.field(default_factory=Caps)


DEFAULT_RULES = RuleSet()


def rules_to_document(rules: RuleSet) -> dict[str, Any]:
    return msgspec.to_builtins(rules)


def parse_rules(document: str | bytes | dict[str, Any]) -> RuleSet:
    """Parse and validate a rule document; raises Invalid naming the first problem."""
    try:
        if isinstance(document, dict):
            rules = msgspec.convert(document, RuleSet)
        else:
            rules = msgspec.json.decode(document, type=RuleSet)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise Invalid("invalid_rule_set", f"The rule set is not valid: {exc}.") from exc
    problems = validate_rules(rules)
    if problems:
        raise Invalid("invalid_rule_set", "The rule set is not valid: " + "; ".join(problems) + ".")
    return rules


def validate_rules(rules: RuleSet) -> list[str]:
    problems: list[str] = []
    for where, categories in (
        ("fast_path.categories", rules.fast_path.categories),
        ("dual_approval.categories", rules.dual_approval.categories),
        ("caps.category_monthly_budget_cents", tuple(rules.caps.category_monthly_budget_cents)),
    ):
        unknown = sorted(set(categories) - set(CATEGORIES))
        if unknown:
            problems.append(f"{where} has unknown categories {', '.join(unknown)}")
    amounts = {
        "fast_path.amount_cents_max": rules.fast_path.amount_cents_max,
        "single_approval.amount_cents_max": rules.single_approval.amount_cents_max,
        "caps.hotel_nights_per_case_30d_max": rules.caps.hotel_nights_per_case_30d_max,
        "caps.case_amount_cents_90d_max": rules.caps.case_amount_cents_90d_max,
        "caps.requester_hotel_nights_30d_max": rules.caps.requester_hotel_nights_30d_max,
        "caps.requester_amount_cents_30d_max": rules.caps.requester_amount_cents_30d_max,
        **{f"caps.category_monthly_budget_cents.{k}": v for k, v in rules.caps.category_monthly_budget_cents.items()},
    }
    problems.extend(f"{name} cannot be negative" for name, value in amounts.items() if value < 0)
    if rules.fast_path.amount_cents_max > rules.single_approval.amount_cents_max:
        problems.append("fast_path.amount_cents_max cannot exceed single_approval.amount_cents_max")
    # International travel needs two approvers by DESIGN.md rule 3; a rule set cannot relax that.
    if Category.TRAVEL_INTERNATIONAL.value not in rules.dual_approval.categories:
        problems.append("dual_approval.categories must include travel_international")
    if Category.TRAVEL_INTERNATIONAL.value in rules.fast_path.categories:
        problems.append("fast_path.categories cannot include travel_international")
    return problems


def format_rules(rules: RuleSet) -> str:
    return json.dumps(rules_to_document(rules), indent=2, sort_keys=True)


def counts_nights(category: str) -> bool:
    """Only a hotel stay is counted in nights: it needs them, is capped by them, and nothing else has them."""
    return category == Category.HOTEL


@dataclass(frozen=True)
class RequestFacts:
    """What the request says about itself, and who asks."""

    category: str
    amount_cents: int
    nights: int | None
    requester_id: str
    requester_organisation_id: str
    requester_is_lead_worker: bool


@dataclass(frozen=True)
class ItemFacts:
    """One item of a request: what it is for, how much, and its nights (a hotel stay only)."""

    category: str
    amount_cents: int
    nights: int | None = None


@dataclass(frozen=True)
class HistoryFacts:
    """What the fund already spent or promised, not counting this request (rejected/cancelled excluded,
    except what a card spent after its request ended). The caps (per case, per requester) count pending
    requests too, so splitting a request does not slip under them; the category budget counts only what
    was approved, so one huge pending request does not use up everyone's month. `category_month_cents` is the
    month of the request's (largest item's) category; `category_month_by_category` the month of each
    category of its items (empty for facts stored before requests had items)."""

    case_hotel_nights_30d: int = 0
    case_amount_cents_90d: int = 0
    category_month_cents: int = 0
    requester_hotel_nights_30d: int = 0
    requester_amount_cents_30d: int = 0
    category_month_by_category: dict[str, int] = field(default_factory=dict)

    def month_cents(self, category: str) -> int:
        if self.category_month_by_category:
            return self.category_month_by_category.get(category, 0)
        return self.category_month_cents

    def as_dict(self) -> dict[str, Any]:
        return {
            "case_hotel_nights_30d": self.case_hotel_nights_30d,
            "case_amount_cents_90d": self.case_amount_cents_90d,
            "category_month_cents": self.category_month_cents,
            "requester_hotel_nights_30d": self.requester_hotel_nights_30d,
            "requester_amount_cents_30d": self.requester_amount_cents_30d,
            "category_month_by_category": dict(self.category_month_by_category),
        }


@dataclass(frozen=True)
class Because:
    """One reason for the path, and what it came from: an item (its position, from 0) or, `item` None, the
    request as a whole (its total, its requester, or its only item)."""

    reason: str
    item: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "item": self.item}


@dataclass(frozen=True)
class RuleDecision:
    """Which approval path a request takes (not the card authorization's answer, `ledger.cards`)."""

    outcome: str  # approved | pending_approval
    rule: str
    approvals_needed: int
    needs_other_org: bool
    reasons: tuple[str, ...]
    decided_by: tuple[Because, ...] = ()


# The order reasons are told in: escalations (rule 3, then the caps of rule 4), then why not the fast path.
REASON_ORDER = (
    "category_requires_dual_approval",
    "amount_above_single_approval",
    "hotel_nights_cap",
    "case_amount_cap",
    "requester_hotel_nights_cap",
    "requester_amount_cap",
    "category_monthly_budget",
    "category_not_fast_path",
    "amount_above_fast_path",
    "not_lead_worker",
)


def _told(found: list[Because]) -> tuple[tuple[str, ...], tuple[Because, ...]]:
    ordered = sorted(found, key=lambda b: REASON_ORDER.index(b.reason))
    return tuple(dict.fromkeys(b.reason for b in ordered)), tuple(ordered)


def evaluate(request: RequestFacts, history: HistoryFacts, rules: RuleSet) -> RuleDecision:
    """Which rule decides a request of one item."""
    item = ItemFacts(request.category, request.amount_cents, request.nights)
    return evaluate_items((item,), history, rules, requester_is_lead_worker=request.requester_is_lead_worker)


def evaluate_items(
    items: Sequence[ItemFacts], history: HistoryFacts, rules: RuleSet, *, requester_is_lead_worker: bool
) -> RuleDecision:
    """Which rule decides a request of several items: the rules apply to each item (its category, its amount,
    its category's budget) and to the total (the amount limits, the caps), and the request takes the strictest
    path any of them needs. Escalations are checked first: a cap beats the fast path. With one item, the item
    is the request, and every reason is the request's."""
    if not items:
        raise Invalid("items_required", "A request has at least one item.")
    single = len(items) == 1

    def at(position: int) -> int | None:
        return None if single else position

    total = sum(i.amount_cents for i in items)
    nights = sum(i.nights or 0 for i in items if counts_nights(i.category))
    has_nights = any(counts_nights(i.category) for i in items)
    caps = rules.caps
    escalations: list[Because] = []
    for position, item in enumerate(items):
        if item.category in rules.dual_approval.categories:
            escalations.append(Because("category_requires_dual_approval", at(position)))
        if item.amount_cents > rules.single_approval.amount_cents_max:
            escalations.append(Because("amount_above_single_approval", at(position)))
    if not single and total > rules.single_approval.amount_cents_max:
        escalations.append(Because("amount_above_single_approval"))
    if has_nights and history.case_hotel_nights_30d + nights > caps.hotel_nights_per_case_30d_max:
        escalations.append(Because("hotel_nights_cap"))
    if history.case_amount_cents_90d + total > caps.case_amount_cents_90d_max:
        escalations.append(Because("case_amount_cap"))
    if has_nights and history.requester_hotel_nights_30d + nights > caps.requester_hotel_nights_30d_max:
        escalations.append(Because("requester_hotel_nights_cap"))
    if history.requester_amount_cents_30d + total > caps.requester_amount_cents_30d_max:
        escalations.append(Because("requester_amount_cap"))
    by_category: dict[str, int] = {}
    for item in items:
        by_category[item.category] = by_category.get(item.category, 0) + item.amount_cents
    for category, cents in by_category.items():
        budget = caps.category_monthly_budget_cents.get(category)
        if budget is not None and history.month_cents(category) + cents > budget:
            escalations.extend(
                Because("category_monthly_budget", at(p)) for p, i in enumerate(items) if i.category == category
            )
    if escalations:
        reasons, decided_by = _told(escalations)
        return RuleDecision(
            "pending_approval", DUAL_APPROVAL, 2, rules.dual_approval.other_org_required, reasons, decided_by
        )

    fast = rules.fast_path
    why_not_fast: list[Because] = []
    for position, item in enumerate(items):
        if item.category not in fast.categories:
            why_not_fast.append(Because("category_not_fast_path", at(position)))
        if item.amount_cents > fast.amount_cents_max:
            why_not_fast.append(Because("amount_above_fast_path", at(position)))
    if not single and total > fast.amount_cents_max:
        why_not_fast.append(Because("amount_above_fast_path"))
    if fast.lead_worker_required and not requester_is_lead_worker:
        why_not_fast.append(Because("not_lead_worker"))
    if not why_not_fast:
        return RuleDecision("approved", FAST_PATH, 0, False, ("fast_path",), (Because("fast_path"),))
    reasons, decided_by = _told(why_not_fast)
    return RuleDecision("pending_approval", SINGLE_APPROVAL, 1, False, reasons, decided_by)


@dataclass(frozen=True)
class Approver:
    user_id: str
    organisation_id: str


@dataclass(frozen=True)
class ApprovalVerdict:
    """`refused` is an error code (or None); `complete` says whether this approval finishes the request."""

    refused: str | None
    complete: bool


SELF_APPROVAL = "self_approval"
DUPLICATE_APPROVER = "duplicate_approver"
OTHER_ORG_REQUIRED = "other_org_required"


def check_approval(
    *,
    requester: Approver,
    approvals_needed: int,
    needs_other_org: bool,
    previous: tuple[Approver, ...],
    approver: Approver,
) -> ApprovalVerdict:
    """May `approver` add an approval after `previous`? Rule 5 and rule 3's distinct, cross-org approvers."""
    if approver.user_id == requester.user_id:
        return ApprovalVerdict(SELF_APPROVAL, False)
    if any(p.user_id == approver.user_id for p in previous):
        return ApprovalVerdict(DUPLICATE_APPROVER, False)
    after = (*previous, approver)
    complete = len(after) >= approvals_needed
    if needs_other_org:
        other_org = any(a.organisation_id != requester.organisation_id for a in after)
        # Refuse the approval that would fill the last slot without anyone from outside; earlier slots may
        # be anyone, so one organisation's approvers can start while another is asked.
        if complete and not other_org:
            return ApprovalVerdict(OTHER_ORG_REQUIRED, False)
    return ApprovalVerdict(None, complete)
