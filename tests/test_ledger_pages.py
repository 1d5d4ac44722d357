"""The ledger's htmx pages: request form, inbox, status, journal with CSV, report with SVG, rule editor."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from tests.conftest import Network, login_page_session
from tests.test_ledger_support import (
    fixture_fund_id,  # noqa: F401  (fixture)
    new_case,
    request_disbursement,
)


def _csrf(client: AsyncTestClient) -> str:
    return client.cookies.get("csrftoken") or ""


async def test_case_worker_requests_from_the_form_and_sees_the_outcome_at_once(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    code = await new_case(client, network["worker"])
    await login_page_session(client, "worker")
    page = await client.get("/ledger/request")
    assert (
        page.status_code == 200
        and code in page.text
        and 'ws-connect="/board/ws?views=ledger,holds&amp;page=request"' in page.text
    )
    response = await client.post(
        "/ledger/request",
        data={"fund_id": fund_id, "case_code": code, "category": "calling_card", "amount": "20.00", "payee": "Bell"},
        headers={"HX-Request": "true", "x-csrftoken": _csrf(client)},
    )
    assert response.status_code == 200, response.text
    assert "Approved" in response.text and "Fast path" in response.text
    bad = await client.post(
        "/ledger/request",
        data={"fund_id": fund_id, "case_code": code, "category": "hotel", "amount": "1.005"},
        headers={"HX-Request": "true", "x-csrftoken": _csrf(client)},
    )
    # The form comes back in place, with what was typed and the message beside the amount.
    assert bad.status_code == 200 and "Write the amount in dollars" in bad.text and 'value="1.005"' in bad.text


async def test_the_form_refuses_nights_for_a_category_without_any(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    """Nights typed for a calling card are a field error (never silently dropped); a hotel needs them."""
    code = await new_case(client, network["worker"])
    await login_page_session(client, "worker")
    await client.get("/ledger/request")
    form = {"fund_id": fund_id, "case_code": code, "amount": "12.50", "payee": "Bell", "nights": "3"}
    card = await client.post(
        "/ledger/request",
        data={**form, "category": "calling_card"},
        headers={"HX-Request": "true", "x-csrftoken": _csrf(client)},
    )
    assert card.status_code == 200, card.text
    assert "Only a hotel stay has nights" in card.text and 'id="disb-status-' not in card.text
    hotel = await client.post(
        "/ledger/request",
        data={**form, "category": "hotel", "nights": ""},
        headers={"HX-Request": "true", "x-csrftoken": _csrf(client)},
    )
    assert "A hotel stay needs the number of nights." in hotel.text


async def test_inbox_journal_report_and_rules_pages(client: AsyncTestClient, network: Network, fund_id: str) -> None:
    worker = network["worker"]
    code = await new_case(client, worker)
    pending = (await request_disbursement(client, worker, fund_id, code, category="other", amount_cents=40_000)).json()
    await login_page_session(client, "approver")
    inbox = await client.get("/ledger/inbox")
    assert inbox.status_code == 200 and f'id="inbox-{pending["id"]}"' in inbox.text
    approved = await client.post(
        f"/ledger/requests/{pending['id']}/approve", headers={"HX-Request": "true", "x-csrftoken": _csrf(client)}
    )
    assert approved.status_code == 200 and "Approved" in approved.text and 'hx-swap-oob="delete"' in approved.text
    paid = await client.post(
        f"/ledger/requests/{pending['id']}/pay",
        data={"amount": "350.00", "reference": "e-transfer"},
        headers={"x-csrftoken": _csrf(client)},
        follow_redirects=False,
    )
    assert paid.status_code == 303
    assert (await client.get("/ledger/journal")).status_code == 403
    await client.post("/logout", headers={"x-csrftoken": _csrf(client)})
    await login_page_session(client, "auditor")
    journal = await client.get("/ledger/journal")
    assert journal.status_code == 200 and "expenses:other" in journal.text
    csv = await client.get(f"/ledger/journal.csv?fund={fund_id}")
    assert csv.status_code == 200 and csv.text.startswith("entry_id,")
    report = await client.get("/ledger/report")
    assert report.status_code == 200 and "<svg" in report.text and "<script>" not in report.text
    await client.post("/logout", headers={"x-csrftoken": _csrf(client)})
    await login_page_session(client, "admin")
    rules = await client.get("/ledger/rules")
    assert rules.status_code == 200 and "single_approval" in rules.text
    preview = await client.post(
        "/ledger/rules/preview",
        data={"fund_id": fund_id, "document": '{"single_approval": {"amount_cents_max": 30000}}'},
        headers={"HX-Request": "true", "x-csrftoken": _csrf(client)},
    )
    assert preview.status_code == 200 and "Two approvals" in preview.text
    invalid = await client.post(
        "/ledger/rules/preview",
        data={"fund_id": fund_id, "document": '{"fast_path": {"categories": ["casino"]}}'},
        headers={"HX-Request": "true", "x-csrftoken": _csrf(client)},
    )
    assert 'role="alert"' in invalid.text
    saved = await client.post(
        "/ledger/rules",
        data={"fund_id": fund_id, "document": '{"single_approval": {"amount_cents_max": 30000}}'},
        headers={"x-csrftoken": _csrf(client)},
        follow_redirects=False,
    )
    assert saved.status_code == 303 and "saved=2" in saved.headers["location"]


async def test_police_and_shelters_do_not_reach_ledger_pages(client: AsyncTestClient, network: Network) -> None:
    await login_page_session(client, "police")
    for path in ("/ledger/request", "/ledger/inbox", "/ledger/journal", "/ledger/report", "/ledger/rules"):
        assert (await client.get(path)).status_code == 403, path
