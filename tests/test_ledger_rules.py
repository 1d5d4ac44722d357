"""Property-based tests of the pure rule engine (ledger/rules.py): no I/O, thousands of cases."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import Invalid
from ledger.models import CATEGORIES
from ledger.rules import (
    DEFAULT_RULES,
    DUAL_APPROVAL,
    FAST_PATH,
    SINGLE_APPROVAL,
    Approver,
    HistoryFacts,
    RequestFacts,
    check_approval,
    counts_nights,
    evaluate,
    format_rules,
    parse_rules,
    rules_to_document,
)

ORGS = ["org-a", "org-b", "org-c"]
users = st.sampled_from([f"user-{i}" for i in range(6)])
approvers = st.builds(Approver, user_id=users, organisation_id=st.sampled_from(ORGS))
requests = st.builds(
    RequestFacts,
    category=st.sampled_from(CATEGORIES),
    amount_cents=st.integers(min_value=1, max_value=1_000_000),
    nights=st.none() | st.integers(min_value=1, max_value=30),
    requester_id=users,
    requester_organisation_id=st.sampled_from(ORGS),
    requester_is_lead_worker=st.booleans(),
)
histories = st.builds(
    HistoryFacts,
    case_hotel_nights_30d=st.integers(min_value=0, max_value=20),
    case_amount_cents_90d=st.integers(min_value=0, max_value=800_000),
    category_month_cents=st.integers(min_value=0, max_value=800_000),
)


def run_approvals(request: RequestFacts, decision, attempts: list[Approver]) -> tuple[list[Approver], bool]:
    """Feed approval attempts through check_approval as the service does; return accepted ones and completion."""
    requester = Approver(request.requester_id, request.requester_organisation_id)
    accepted: list[Approver] = []
    for approver in attempts:
        verdict = check_approval(
            requester=requester,
            approvals_needed=decision.approvals_needed,
            needs_other_org=decision.needs_other_org,
            previous=tuple(accepted),
            approver=approver,
        )
        if verdict.refused:
            continue
        accepted.append(approver)
        if verdict.complete:
            return accepted, True
    return accepted, False


@settings(max_examples=400)
@given(request=requests, history=histories, attempts=st.lists(approvers, max_size=8))
def test_no_self_approval_ever_and_distinct_approvers(request, history, attempts) -> None:
    decision = evaluate(request, history, DEFAULT_RULES)
    if decision.outcome == "approved":
        return
    accepted, _complete = run_approvals(request, decision, attempts)
    assert all(a.user_id != request.requester_id for a in accepted)
    assert len({a.user_id for a in accepted}) == len(accepted)


@settings(max_examples=400)
@given(request=requests, history=histories, attempts=st.lists(approvers, max_size=8))
def test_international_or_large_amounts_need_two_approvers_one_from_another_org(request, history, attempts) -> None:
    decision = evaluate(request, history, DEFAULT_RULES)
    if request.category == "travel_international" or request.amount_cents > 150_000:
        assert decision.rule == DUAL_APPROVAL
        assert decision.approvals_needed == 2 and decision.needs_other_org
        accepted, complete = run_approvals(request, decision, attempts)
        if complete:
            assert len({a.user_id for a in accepted}) >= 2
            assert any(a.organisation_id != request.requester_organisation_id for a in accepted)
            assert request.requester_id not in {a.user_id for a in accepted}


@settings(max_examples=400)
@given(request=requests, history=histories)
def test_fast_path_only_for_its_categories_amount_and_lead_workers(request, history) -> None:
    decision = evaluate(request, history, DEFAULT_RULES)
    if decision.rule == FAST_PATH:
        assert decision.outcome == "approved" and decision.approvals_needed == 0
        assert request.category in ("calling_card", "travel_local", "basic_needs")
        assert request.amount_cents <= 25_000
        assert request.requester_is_lead_worker
    else:
        assert decision.outcome == "pending_approval" and decision.approvals_needed in (1, 2)


@given(request=requests)
def test_fast_path_is_granted_when_every_condition_holds_and_nothing_escalates(request) -> None:
    if request.category in ("calling_card", "travel_local", "basic_needs") and request.amount_cents <= 25_000:
        decision = evaluate(request, HistoryFacts(), DEFAULT_RULES)
        expected = FAST_PATH if request.requester_is_lead_worker else SINGLE_APPROVAL
        assert decision.rule == expected


def test_caps_escalate_to_dual_approval() -> None:
    base = RequestFacts("hotel", 40_000, 3, "u1", "org-a", True)
    assert evaluate(base, HistoryFacts(case_hotel_nights_30d=4), DEFAULT_RULES).rule == SINGLE_APPROVAL
    hotel = evaluate(base, HistoryFacts(case_hotel_nights_30d=5), DEFAULT_RULES)
    assert hotel.rule == DUAL_APPROVAL and "hotel_nights_cap" in hotel.reasons
    card = RequestFacts("calling_card", 2_000, None, "u1", "org-a", True)
    assert evaluate(card, HistoryFacts(), DEFAULT_RULES).rule == FAST_PATH
    over_case = evaluate(card, HistoryFacts(case_amount_cents_90d=499_000), DEFAULT_RULES)
    assert over_case.rule == DUAL_APPROVAL and "case_amount_cap" in over_case.reasons
    over_budget = evaluate(card, HistoryFacts(category_month_cents=49_000), DEFAULT_RULES)
    assert over_budget.rule == DUAL_APPROVAL and "category_monthly_budget" in over_budget.reasons


def test_rule_documents_round_trip_and_are_validated() -> None:
    assert parse_rules(format_rules(DEFAULT_RULES)) == DEFAULT_RULES
    doc = rules_to_document(DEFAULT_RULES)
    doc["single_approval"]["amount_cents_max"] = 100_000
    assert parse_rules(doc).single_approval.amount_cents_max == 100_000
    bad_documents = [
        b"{not json",
        {"fast_path": {"categories": ["casino"]}},
        {"fast_path": {"amount_cents_max": -1}},
        {"fast_path": {"amount_cents_max": 12.5}},
        {"dual_approval": {"categories": []}},
        {"surprise": 1},
        {"fast_path": {"amount_cents_max": 300_000}},
    ]
    for bad in bad_documents:
        with pytest.raises(Invalid):
            parse_rules(bad)


def test_only_a_hotel_stay_counts_nights() -> None:
    assert [category for category in CATEGORIES if counts_nights(category)] == ["hotel"]
    hotel = RequestFacts("hotel", 10_000, 8, "u1", "org-a", True)
    assert "hotel_nights_cap" in evaluate(hotel, HistoryFacts(), DEFAULT_RULES).reasons
    # Nights never count for another category, even if a caller passes some.
    card = RequestFacts("calling_card", 2_000, 8, "u1", "org-a", True)
    assert evaluate(card, HistoryFacts(case_hotel_nights_30d=7), DEFAULT_RULES).rule == FAST_PATH
