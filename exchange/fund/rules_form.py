"""The rule set as a form people can read: amounts in dollars, one section per path and per category, each
limit with its meaning; parsed back to the rule document (cents) with a plain message beside each wrong field,
and the difference between two versions in the same words. The JSON stays the advanced view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exchange.web.forms import parse_money
from exchange.web.i18n import N_, format_money
from exchange.web.i18n import gettext as _
from ledger.errors import Invalid
from ledger.models import CATEGORIES, Category
from ledger.rules import RuleSet, rules_to_document
from ledger.rulesets import RuleCeilings

MONEY, COUNT, FLAG, CATEGORY_SET = "money", "count", "flag", "categories"


@dataclass(frozen=True)
class RuleField:
    """One limit of the form: its input's name, where it sits in the document, its kind, its label and meaning."""

    name: str
    path: tuple[str, ...]
    kind: str
    label: str
    meaning: str


# Sections in the order of the page: the fast path, one approver, two approvers, the caps.
FIELDS: tuple[RuleField, ...] = (
    RuleField(
        "fast_path_categories",
        ("fast_path", "categories"),
        CATEGORY_SET,
        N_("Kinds of expense on the fast path"),
        N_("Requests of these kinds may be approved at once, with no approver."),
    ),
    RuleField(
        "fast_path_amount",
        ("fast_path", "amount_cents_max"),
        MONEY,
        N_("Fast path limit"),
        N_("Up to this amount, a request of a kind above is approved at once."),
    ),
    RuleField(
        "fast_path_lead_worker",
        ("fast_path", "lead_worker_required"),
        FLAG,
        N_("Lead workers only"),
        N_("Only lead workers use the fast path; other workers' requests go to an approver."),
    ),
    RuleField(
        "single_approval_amount",
        ("single_approval", "amount_cents_max"),
        MONEY,
        N_("One-approver limit"),
        N_("Up to this amount one fund approver decides; above it, two do."),
    ),
    RuleField(
        "dual_approval_categories",
        ("dual_approval", "categories"),
        CATEGORY_SET,
        N_("Kinds of expense that always need two approvers"),
        N_("International travel is always one of them."),
    ),
    RuleField(
        "dual_approval_other_org",
        ("dual_approval", "other_org_required"),
        FLAG,
        N_("One approver from another organisation"),
        N_("When two approvers decide, one of them is from another organisation than the requester's."),
    ),
    RuleField(
        "case_hotel_nights",
        ("caps", "hotel_nights_per_case_30d_max"),
        COUNT,
        N_("Hotel nights per case over 30 days"),
        N_("Beyond this many nights for one case, two approvers decide."),
    ),
    RuleField(
        "case_amount",
        ("caps", "case_amount_cents_90d_max"),
        MONEY,
        N_("Amount per case over 90 days"),
        N_("Beyond this total for one case, two approvers decide."),
    ),
    RuleField(
        "requester_hotel_nights",
        ("caps", "requester_hotel_nights_30d_max"),
        COUNT,
        N_("Hotel nights per requester over 30 days"),
        N_("Beyond this many nights asked by one worker, over all their cases, two approvers decide."),
    ),
    RuleField(
        "requester_amount",
        ("caps", "requester_amount_cents_30d_max"),
        MONEY,
        N_("Amount per requester over 30 days"),
        N_("Beyond this total asked by one worker, over all their cases, two approvers decide."),
    ),
)
BUDGET_PREFIX = "budget_"
BUDGET_LABEL = N_("Monthly budget")
BUDGET_MEANING = N_(
    "Beyond this total approved in a month for this kind of expense, two approvers decide. Empty: no budget."
)
SECTIONS = {
    "fast_path": N_("Fast path: approved at once"),
    "single_approval": N_("One approver"),
    "dual_approval": N_("Two approvers"),
    "caps": N_("Limits per case and per requester"),
}


def _get(document: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = document
    for key in path:
        value = value[key]
    return value


def _dollars(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def form_values(rules: RuleSet) -> dict[str, Any]:
    """The form filled from a rule set: dollars as text, counts as text, flags and category sets as they are."""
    document = rules_to_document(rules)
    values: dict[str, Any] = {}
    for field in FIELDS:
        value = _get(document, field.path)
        if field.kind == MONEY:
            values[field.name] = _dollars(value)
        elif field.kind == COUNT:
            values[field.name] = str(value)
        elif field.kind == CATEGORY_SET:
            values[field.name] = list(value)
        else:
            values[field.name] = bool(value)
    for category in CATEGORIES:
        cents = document["caps"]["category_monthly_budget_cents"].get(category)
        values[BUDGET_PREFIX + category] = "" if cents is None else _dollars(cents)
    return values


def typed_values(form: Any) -> dict[str, Any]:
    """What was typed in the posted form (a multi-dict: the category sets are checkboxes)."""
    values: dict[str, Any] = {}
    for field in FIELDS:
        if field.kind == CATEGORY_SET:
            values[field.name] = [c for c in form.getall(field.name, []) if c in CATEGORIES]
        elif field.kind == FLAG:
            values[field.name] = form.get(field.name) == "on"
        else:
            values[field.name] = str(form.get(field.name, "")).strip()
    for category in CATEGORIES:
        values[BUDGET_PREFIX + category] = str(form.get(BUDGET_PREFIX + category, "")).strip()
    return values


def _money(text: str, errors: dict[str, str], name: str, *, required: bool = True) -> int | None:
    if not text:
        if required:
            errors[name] = _("Write an amount in dollars, like 250 or 250.00.")
        return None
    try:
        return parse_money(text)
    except Invalid:
        errors[name] = _("Write an amount in dollars, like 250 or 250.00.")
        return None


def parse_form(values: dict[str, Any], ceilings: RuleCeilings) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The rule document (cents) the form means, or a plain message for each wrong field."""
    errors: dict[str, str] = {}
    document: dict[str, Any] = {"fast_path": {}, "single_approval": {}, "dual_approval": {}, "caps": {}}
    for field in FIELDS:
        section, key = field.path
        value = values[field.name]
        if field.kind == MONEY:
            value = _money(value, errors, field.name)
        elif field.kind == COUNT:
            if not value.isdigit():
                errors[field.name] = _("Write a whole number of nights, like 7.")
                value = None
            else:
                value = int(value)
        document[section][key] = value
    budgets: dict[str, int] = {}
    for category in CATEGORIES:
        cents = _money(values[BUDGET_PREFIX + category], errors, BUDGET_PREFIX + category, required=False)
        if cents is not None:
            budgets[category] = cents
    document["caps"]["category_monthly_budget_cents"] = budgets
    fast, single = document["fast_path"]["amount_cents_max"], document["single_approval"]["amount_cents_max"]
    international = Category.TRAVEL_INTERNATIONAL.value
    if fast is not None and fast > ceilings.fast_path_cents_max:
        errors["fast_path_amount"] = _(
            "The operators allow at most %(max)s on the fast path.", max=format_money(ceilings.fast_path_cents_max)
        )
    elif fast is not None and single is not None and fast > single:
        errors["fast_path_amount"] = _("The fast path limit cannot be above the one-approver limit.")
    if single is not None and single > ceilings.single_approval_cents_max:
        errors["single_approval_amount"] = _(
            "The operators allow at most %(max)s for one approver.",
            max=format_money(ceilings.single_approval_cents_max),
        )
    if international in document["fast_path"]["categories"]:
        errors["fast_path_categories"] = _("International travel cannot be on the fast path.")
    if international not in document["dual_approval"]["categories"]:
        errors["dual_approval_categories"] = _("International travel always needs two approvers: keep it checked.")
    return (None, errors) if errors else (document, {})


@dataclass(frozen=True)
class Change:
    """One limit that differs between two versions, for the page to show in words."""

    label: str
    kind: str
    was: Any
    now: Any
    category: str = ""


def difference(before: RuleSet, after: RuleSet) -> list[Change]:
    """What changes from `before` (the version in force) to `after`, limit by limit, in the form's words."""
    old, new = rules_to_document(before), rules_to_document(after)
    changes = []
    for field in FIELDS:
        was, now = _get(old, field.path), _get(new, field.path)
        if field.kind == CATEGORY_SET:
            was, now = sorted(was), sorted(now)
        if was != now:
            changes.append(Change(_(field.label), field.kind, was, now))
    old_budgets = old["caps"]["category_monthly_budget_cents"]
    new_budgets = new["caps"]["category_monthly_budget_cents"]
    for category in CATEGORIES:
        was, now = old_budgets.get(category), new_budgets.get(category)
        if was != now:
            changes.append(Change(_(BUDGET_LABEL), MONEY, was, now, category))
    return changes
