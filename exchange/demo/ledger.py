"""Demo history of the emergency fund, posted through the ledger's own functions so balances and hashes hold."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from exchange.accounts.models import User
from exchange.demo.network import DemoNetwork
from ledger import disbursements, payments
from ledger.cases import create_case
from ledger.deposits import deposit
from ledger.disbursements import NewDisbursement, Requester
from ledger.funds import create_fund
from ledger.rules import Approver
from ledger.timeutil import utcnow


async def seed_ledger(session: AsyncSession, net: DemoNetwork) -> None:
    users = net.users
    admin, worker, dual = users["admin"], users["caseworker"], users["dual"]
    approver, approver2 = users["approver"], users["approver2"]
    start = utcnow() - timedelta(days=40)
    fund = await create_fund(session, name="Emergency Fund", currency="CAD", now=start)

    async def give(day: int, cents: int, source: str, note: str) -> None:
        at = start + timedelta(days=day)
        await deposit(session, fund.id, amount_cents=cents, source=source, note=note, actor_user_id=admin.id, now=at)

    await give(0, 2_500_000, "grant", "Provincial grant")
    cases = [
        await create_case(session, lead_org_id=worker.organisation_id, created_by_user_id=worker.id) for _ in range(4)
    ]

    def as_requester(user: User) -> Requester:
        return Requester(user.id, user.organisation_id, user.lead_worker)

    def who(user: User) -> Approver:
        return Approver(user.id, user.organisation_id)

    # (day, requester, case, category, cents, nights, payee, approvers, paid cents or None, reject reason)
    plan = [
        (1, worker, 0, "calling_card", 2_500, None, "Prepaid phone card", [], 2_500, None),
        (2, worker, 0, "travel_local", 1_275, None, "STM bus tickets", [], 1_275, None),
        (3, worker, 0, "hotel", 48_000, 3, "Partner hotel", [approver], 46_500, None),
        (6, dual, 1, "basic_needs", 8_900, None, "Clothing and hygiene kit", [], 8_900, None),
        (
            9,
            worker,
            1,
            "travel_interprovincial",
            182_000,
            None,
            "VIA Rail Montréal-Halifax",
            [approver, approver2],
            179_850,
            None,
        ),
        (12, worker, 2, "other", 60_000, None, "Document replacement fees", [], None, "Covered by the legal clinic"),
        (15, worker, 2, "calling_card", 2_000, None, "Prepaid phone card", [], 2_000, None),
        (20, dual, 3, "hotel", 32_000, 2, "Partner hotel", [approver], 32_000, None),
        (27, worker, 3, "travel_local", 3_500, None, "Taxi to the shelter", [], 3_500, None),
        (33, worker, 1, "basic_needs", 12_000, None, "Groceries", [], None, None),
        (36, dual, 2, "travel_interprovincial", 41_000, None, "Bus Montréal-Toronto", [], None, None),
    ]
    for day, requester, case_index, category, cents, nights, payee, approvers, paid, reason in plan:
        when = start + timedelta(days=day, hours=10)
        new = NewDisbursement(fund.id, cases[case_index].code, category, cents, payee, nights=nights)
        result = await disbursements.request_disbursement(session, new, requester=as_requester(requester), now=when)
        d = result.disbursement
        for hour, approving in enumerate(approvers, start=1):
            await disbursements.approve(session, d.id, approver=who(approving), now=when + timedelta(hours=hour))
        if reason:
            await disbursements.reject(
                session, d.id, approver=who(approver), reason=reason, now=when + timedelta(hours=2)
            )
        if paid is not None:
            await payments.pay(
                session,
                d.id,
                method=payments.MANUAL,
                amount_cents=paid,
                reference="demo",
                actor_user_id=approver.id,
                now=when + timedelta(hours=5),
            )
    await give(38, 150_000, "donation", "Community fundraiser")
