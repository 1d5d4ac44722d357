"""The fund's forms forgive: errors in place with what was typed (EN/FR), one request per form shown, the
approval path said before sending, an inbox with what deciding needs, and a journal CSV people can read."""

from __future__ import annotations

import csv
import html
import io
import re
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from ledger.models import Disbursement
from tests.conftest import Network, login_page_session
from tests.test_ledger_support import (
    fixture_fund_id,  # noqa: F401  (fixture)
    new_case,
    request_disbursement,
)

HTMX = {"HX-Request": "true"}


def _headers(client: AsyncTestClient, htmx: bool = True) -> dict[str, str]:
    return {**(HTMX if htmx else {}), "x-csrftoken": client.cookies.get("csrftoken") or ""}


def _key(page: str) -> str:
    found = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', page)
    assert found, "the form carries an idempotency key made when it was rendered"
    return found.group(1)


async def _count(sessionmaker: async_sessionmaker) -> int:
    async with sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(Disbursement))).scalar_one())


async def _form(client: AsyncTestClient, username: str = "worker") -> str:
    await login_page_session(client, username)
    page = await client.get("/ledger/request")
    assert page.status_code == 200
    return page.text


async def test_errors_come_back_beside_their_field_with_what_was_typed_in_english_and_french(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    code = await new_case(client, network["worker"])
    page = await _form(client)
    typed = {
        "fund_id": fund_id,
        "case_code": code,
        "category": "hotel",
        "amount": "0",
        "nights": "",
        "payee": "Hotel Le Refuge",
        "note": "two nights before the bus",
        "idempotency_key": _key(page),
    }
    answer = await client.post("/ledger/request", data=typed, headers=_headers(client))
    assert answer.status_code == 200
    body = answer.text
    assert 'id="req-amount-error">The amount must be more than $0.</p>' in body
    assert 'id="req-nights-error">A hotel stay needs the number of nights.</p>' in body
    assert 'value="Hotel Le Refuge"' in body and 'value="two nights before the bus"' in body and 'value="0"' in body
    assert f'<option value="{code}" selected>' in body and '<option value="hotel" selected>' in body
    assert f'value="{typed["idempotency_key"]}"' in body, "nothing was made: the same key stays for the retry"
    # Without htmx, the whole page comes back (422) with the same messages, never a bare error page.
    plain = await client.post("/ledger/request", data=typed, headers=_headers(client, htmx=False))
    assert plain.status_code == 422 and "<h1>" in plain.text and "The amount must be more than $0." in plain.text
    # In French, the messages are French.
    await client.post("/settings/locale", data={"locale": "fr"}, headers=_headers(client, htmx=False))
    french = await client.post("/ledger/request", data=typed, headers=_headers(client))
    assert "Le montant doit être supérieur à 0 $." in french.text
    assert "Un séjour à l'hôtel demande le nombre de nuits." in html.unescape(french.text)
    assert 'value="Hotel Le Refuge"' in french.text
    assert await _count(sessionmaker) == 0


async def test_nights_for_a_category_without_nights_and_unknown_cases_are_field_errors(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    code = await new_case(client, network["worker"])
    page = await _form(client)
    base = {"fund_id": fund_id, "amount": "20", "payee": "Bell", "idempotency_key": _key(page)}
    nights = await client.post(
        "/ledger/request",
        data={**base, "case_code": code, "category": "calling_card", "nights": "2"},
        headers=_headers(client),
    )
    assert 'id="req-nights-error">Only a hotel stay has nights' in nights.text and 'value="2"' in nights.text
    unknown = await client.post(
        "/ledger/request", data={**base, "case_code": "C-AAAA-AA", "category": "calling_card"}, headers=_headers(client)
    )
    assert 'id="req-case-error">This case is not one of your organisation' in unknown.text
    nothing = await client.post("/ledger/request", data={**base, "category": ""}, headers=_headers(client))
    assert "Choose a case, or open a new one." in nothing.text and "Choose what the money is for." in nothing.text
    assert await _count(sessionmaker) == 0


async def test_the_same_form_sent_twice_makes_one_request_and_a_success_clears_the_form(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    code = await new_case(client, network["worker"])
    page = await _form(client)
    key = _key(page)
    typed = {"fund_id": fund_id, "case_code": code, "category": "calling_card", "amount": "20", "payee": "Bell"}
    first = await client.post("/ledger/request", data={**typed, "idempotency_key": key}, headers=_headers(client))
    second = await client.post("/ledger/request", data={**typed, "idempotency_key": key}, headers=_headers(client))
    ids = {re.search(r'id="disb-status-([0-9a-f]{32})"', r.text).group(1) for r in (first, second)}  # type: ignore[union-attr]
    assert len(ids) == 1 and await _count(sessionmaker) == 1
    assert "Request sent." in first.text and 'value="Bell"' not in first.text, "the form is empty again"
    assert _key(first.text) != key, "the next request gets a key of its own"
    assert '<option value="" selected>' not in first.text and f'<option value="{code}" selected>' not in first.text


async def test_the_case_picker_has_no_default_shows_opening_dates_and_opens_a_case_in_place(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    page = await _form(client)
    assert "You have no open case yet." in page, "a new worker is told what to do"
    typed = {"fund_id": fund_id, "case_code": "", "category": "hotel", "amount": "180", "nights": "2"}
    opened = await client.post("/ledger/cases", data=typed, headers=_headers(client))
    code = re.search(r"Case (C-[0-9A-Z]{4}-[0-9A-Z]{2}) opened", opened.text).group(1)  # type: ignore[union-attr]
    assert f'<option value="{code}" selected>' in opened.text and 'value="180"' in opened.text
    await new_case(client, network["worker"])
    again = (await client.get("/ledger/request")).text
    assert '<option value="">Choose a case</option>' in again and " selected>" not in again.split("req-category")[0]
    assert "opened " in again


async def test_the_form_says_which_approval_path_and_why_before_sending(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    code = await new_case(client, network["worker_plain"])
    await _form(client, "worker_plain")
    card = {"fund_id": fund_id, "case_code": code, "category": "calling_card", "amount": "20"}
    path = await client.post("/ledger/request/path", data=card, headers=_headers(client))
    assert "One fund approver decides." in path.text
    assert "only lead workers use the fast path" in path.text, "why a $20 calling card needs an approver"
    far = await client.post(
        "/ledger/request/path",
        data={**card, "category": "travel_international", "amount": "900"},
        headers=_headers(client),
    )
    assert "Two fund approvers decide, one of them from another organisation." in far.text
    assert "this kind of expense always needs two approvers" in far.text
    empty = await client.post("/ledger/request/path", data={**card, "amount": ""}, headers=_headers(client))
    assert "the form then says who decides" in empty.text
    assert await _count(sessionmaker) == 0, "the preview writes nothing"


async def test_lead_worker_sees_the_fast_path(client: AsyncTestClient, network: Network, fund_id: str) -> None:
    code = await new_case(client, network["worker"])
    await _form(client)
    data = {"fund_id": fund_id, "case_code": code, "category": "calling_card", "amount": "20"}
    path = await client.post("/ledger/request/path", data=data, headers=_headers(client))
    assert "Fast path: approved at once" in path.text


async def _pending(client: AsyncTestClient, network: Network, fund_id: str, **kw: Any) -> dict[str, Any]:
    code = await new_case(client, network["worker"])
    body = {"category": "other", "amount_cents": 40_000, "note": "bus ticket to the shelter", **kw}
    answer = await request_disbursement(client, network["worker"], fund_id, code, **body)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def test_the_inbox_gives_context_and_approving_asks_first_and_moves_the_request(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    pending = await _pending(client, network, fund_id)
    await login_page_session(client, "approver")
    inbox = (await client.get("/ledger/inbox")).text
    item = inbox.split(f'id="inbox-{pending["id"]}"')[1].split("</article>")[0]
    assert "Asked by Worker (community org), " in item  # and how long ago ("now" in a test)
    assert "bus ticket to the shelter" in item
    assert "This case over 30 days: $400.00" in item
    assert "One approval, because this kind of expense is not on the fast path" in item
    assert "other" not in re.sub(r"<[^>]+>", "", item).split("·")[1], "no raw category code"
    assert '<details class="confirm">' in item and "Yes, approve $400.00" in item, "approving asks first"
    assert "another approver decides" not in item
    answer = await client.post(f"/ledger/requests/{pending['id']}/approve", headers=_headers(client))
    assert answer.status_code == 200
    assert f'<article id="inbox-{pending["id"]}" hx-swap-oob="delete">' in answer.text, "it leaves 'waiting'"
    assert 'hx-swap-oob="afterbegin:#inbox-approved"' in answer.text
    assert "Approved: the request moved" in answer.text
    after = (await client.get("/ledger/inbox")).text
    waiting, approved = after.split('id="inbox-approved"')
    assert pending["id"] not in waiting and pending["id"] in approved
    assert "another approver decides" not in approved, "only one's own waiting requests say so"


async def test_an_approver_sees_own_request_marked_and_a_refusal_in_place(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    pending = await _pending(client, network, fund_id, category="travel_international", amount_cents=90_000)
    await login_page_session(client, "approver_community")
    empty_reason = await client.post(
        f"/ledger/requests/{pending['id']}/reject", data={"reason": ""}, headers=_headers(client)
    )
    assert "Say why you reject it" in empty_reason.text
    first = await client.post(f"/ledger/requests/{pending['id']}/approve", headers=_headers(client))
    assert "another approver still has to approve" in first.text and "(Approver Community)" in first.text
    twice = await client.post(f"/ledger/requests/{pending['id']}/approve", headers=_headers(client))
    assert 'role="alert">You approved this request already' in twice.text


async def test_the_journal_csv_has_dollars_a_named_file_and_the_hash_chain(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    await login_page_session(client, "auditor")
    answer = await client.get(f"/ledger/journal.csv?fund={fund_id}&from=2020-01-01&to=2040-12-31")
    assert answer.status_code == 200
    assert 'filename="journal-emergency-fund-2020-01-01-to-2040-12-31.csv"' in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert rows and {"amount_cents", "amount", "hash", "prev_hash"} <= set(rows[0])
    deposit = rows[0]
    assert deposit["amount_cents"] == "1000000" and deposit["amount"] == "10000.00"
    assert len(deposit["hash"]) == 64


def _rules_form(fund_id: str, **changed: Any) -> dict[str, Any]:
    from exchange.fund.rules_form import form_values
    from ledger.rules import DEFAULT_RULES

    values = form_values(DEFAULT_RULES)
    values.update(changed)
    data: dict[str, Any] = {"fund_id": fund_id}
    for name, value in values.items():
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        else:
            data[name] = value
    return data


async def test_the_rules_form_in_dollars_shows_its_difference_saves_and_restores(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    await login_page_session(client, "admin")
    page = await client.get("/ledger/rules")
    assert 'name="fast_path_amount" value="250.00"' in page.text
    assert "Up to this amount, a request of a kind above is approved at once." in page.text
    wrong = await client.post(
        "/ledger/rules/form",
        data={**_rules_form(fund_id, fast_path_amount="abc", budget_hotel="6000"), "action": "save"},
        headers=_headers(client, htmx=False),
    )
    assert wrong.status_code == 422
    assert 'id="rule-fast_path_amount-error">Write an amount in dollars' in wrong.text
    assert 'value="abc"' in wrong.text and 'name="budget_hotel" value="6000"' in wrong.text
    above = await client.post(
        "/ledger/rules/form",
        data={**_rules_form(fund_id, fast_path_amount="900"), "action": "check"},
        headers=_headers(client, htmx=False),
    )
    assert "The operators allow at most $500.00 on the fast path." in above.text
    changed = _rules_form(fund_id, fast_path_amount="100", budget_other="")
    check = await client.post(
        "/ledger/rules/form", data={**changed, "action": "check"}, headers=_headers(client, False)
    )
    assert check.status_code == 200
    diff = check.text.split('id="rules-check"')[1].split("</table>")[0]
    assert "Fast path limit" in diff and "$250.00" in diff and "$100.00" in diff
    assert "Monthly budget: Other" in diff and "no budget" in diff
    saved = await client.post(
        "/ledger/rules/form",
        data={**changed, "action": "save"},
        headers=_headers(client, False),
        follow_redirects=False,
    )
    assert saved.status_code == 303 and "saved=2" in saved.headers["location"]
    pending = (await client.get(saved.headers["location"])).text
    assert "What it changes" in pending and "Fast path limit" in pending.split('id="pending-rules"')[1]
    assert "saved by Admin" in pending
    await client.post("/logout", headers=_headers(client, False))
    await login_page_session(client, "approver_community")
    approve = await client.post(
        "/ledger/rules/approve", data={"fund_id": fund_id, "version": "2"}, headers=_headers(client, False)
    )
    assert approve.status_code in (200, 303)
    await client.post("/logout", headers=_headers(client, False))
    await login_page_session(client, "admin")
    restored = await client.post(
        "/ledger/rules/restore",
        data={"fund_id": fund_id, "version": "1"},
        headers=_headers(client, False),
        follow_redirects=False,
    )
    assert restored.status_code == 303 and "saved=3" in restored.headers["location"]
    after = (await client.get(restored.headers["location"])).text
    assert "Version 3 waits for approval" in after and "Version in force: 2" in after
    back = after.split('id="pending-rules"')[1].split("</table>")[0]
    assert "$100.00" in back and "$250.00" in back, "restoring shows what it puts back"
    assert "approved by Approver Community" in after


async def test_a_json_error_keeps_the_document_typed(client: AsyncTestClient, network: Network, fund_id: str) -> None:
    await login_page_session(client, "admin")
    typed = '{"fast_path": {"amount_cents_max": "250"}}'
    answer = await client.post(
        "/ledger/rules", data={"fund_id": fund_id, "document": typed}, headers=_headers(client, False)
    )
    assert answer.status_code == 422 and "<h1>" in answer.text
    assert "every amount is a whole number of cents" in answer.text
    assert "{&#34;fast_path&#34;: {&#34;amount_cents_max&#34;: &#34;250&#34;}}" in answer.text


async def test_a_closed_case_leaves_the_picker_and_takes_no_request(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    code = await new_case(client, network["worker"])
    page = await _form(client)
    assert f"Yes, close {code}: no new request" in page, "closing asks first"
    typed = {"fund_id": fund_id, "case_code": code, "category": "calling_card", "amount": "20", "payee": "Bell"}
    closed = await client.post(f"/ledger/cases/{code}/close", data=typed, headers=_headers(client))
    assert f"Case {code} closed" in closed.text and f'<option value="{code}"' not in closed.text
    assert 'value="Bell"' in closed.text, "what was typed stays"
    sent = await client.post("/ledger/request", data={**typed, "idempotency_key": "k1"}, headers=_headers(client))
    assert 'id="req-case-error">' in sent.text and await _count(sessionmaker) == 0
