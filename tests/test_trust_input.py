"""Input at the trust boundary (issue 9, points 13 and 15): free text that identifies a person is refused,
bodies that would crash the decoder are bad input, e-mail headers stay one line, the public donate form is
rate-limited, and the CSP lets the page connect only to its own origin."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, message_from_string
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from beds.holds_models import Hold
from exchange.accounts.models import Organisation
from exchange.app import create_app
from exchange.holds.mail import header_value, request_mail
from exchange.settings import Settings
from exchange.web.personal_data import BIRTH_DATE, EMAIL, PHONE, find_personal_data
from ledger.models import Disbursement
from tests.conftest import Network, eventually, free_port, login_page_session
from tests.test_ledger_support import fixture_fund_id, new_case, request_disbursement  # noqa: F401  (fixture)
from tests.test_notifications import Inbox

TODAY = date(2026, 12, 1)


@pytest.mark.parametrize(
    "text",
    [
        "call her at 514-555-1234",
        "(514) 555-1234",
        "514.555.1234",
        "514 555 1234",
        "5145551234",
        "+1 514 555 1234",
        "1-800-555-1234",
        "tel 555-1234",
        "+33 1 23 45 67 89",
        "+44 20 7946 0958",
        "0033 1 23 45 67 89",
        "06 12 34 56 78",
    ],
)
def test_phone_numbers_are_found(text: str) -> None:
    assert find_personal_data(text, today=TODAY) == PHONE


@pytest.mark.parametrize("text", ["write to jane.doe@example.org", "J_D+shelter@mail.co.uk please"])
def test_email_addresses_are_found(text: str) -> None:
    assert find_personal_data(text, today=TODAY) == EMAIL


@pytest.mark.parametrize(
    "text",
    [
        "1990-04-12",
        "dob 12/04/1990",
        "12/04/1990",
        "12.04.1990",
        "born 1990",
        "Born in 1990, two kids",
        "née en 1985",
        "date de naissance : 3 mars",
        "12 April 1990",
        "April 12, 1990",
        "12 avril 1990",
    ],
)
def test_dates_of_birth_are_found(text: str) -> None:
    assert find_personal_data(text, today=TODAY) == BIRTH_DATE


@pytest.mark.parametrize(
    "text",
    [
        "",
        "25.50",
        "$1 200.00 for 3 nights",
        "1,200.50",
        "case C-2024-117",
        "C-2024-117 and C-2025-004",
        "3 beds, 2 adults and 1 child",
        "arrives at 21:00, leaves 07:30",
        "21:00-23:00",
        "bus line 55, 2 tickets",
        "hotel for nights of 2026-12-03 to 2026-12-05",
        "pool full until 2027-01-10",
        "Room 101 102 103 104",
        "+20 beds for the cold snap",
        "order 12345",
        "pay by cheque, fund code 2024",
        "Hôtel Le Centre, rue Sainte-Catherine",
        "une nuit de plus, 2 personnes",
    ],
)
def test_amounts_codes_counts_and_times_are_not_personal_data(text: str) -> None:
    assert find_personal_data(text, today=TODAY) is None


# --- point 15 through the API and the pages -------------------------------------------------------------------


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def assert_refused(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "personal_data" and body["field"] == field, body
    assert "identifying details" in body["detail"], body


async def _operation(client: AsyncTestClient, network: Network, **extra: Any) -> Any:
    return await client.post(
        "/api/v1/operations",
        json={
            "code_name": "NIGHTJAR",
            "province": "QC",
            "window_start": later(hours=1),
            "window_end": later(hours=4),
            "needs": [{"profile": "women", "count": 2}],
            **extra,
        },
        headers=network["police"].headers,
    )


async def _requested_hold(client: AsyncTestClient, network: Network) -> str:
    op = await _operation(client, network)
    assert op.status_code == 201, op.text
    hold = await client.post(
        "/api/v1/holds",
        json={
            "pool_id": network.pools["a"].id,
            "beds": 1,
            "operation_id": op.json()["id"],
            "expires_at": later(hours=6),
        },
        headers=network["police"].headers,
    )
    assert hold.status_code == 201, hold.text
    assert hold.json()["status"] == "requested", hold.text
    return hold.json()["id"]


async def test_the_api_refuses_contact_details_and_birth_dates_in_every_free_text_field(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    worker = network["worker"]
    case = await new_case(client, worker)
    # Fund request: the note and the payee.
    refused = await request_disbursement(client, worker, fund_id, case, note="her cell is 514-555-1234")
    assert_refused(refused, "note")
    assert_refused(await request_disbursement(client, worker, fund_id, case, payee="jane.doe@example.org"), "payee")
    async with sessionmaker() as db:
        assert (await db.execute(select(func.count()).select_from(Disbursement))).scalar_one() == 0
    # Rephrased, the same request goes through.
    taken = await request_disbursement(client, worker, fund_id, case, note="calling card for 2 weeks, 25.50")
    assert taken.status_code == 201, taken.text
    # A rejection reason.
    pending = await request_disbursement(
        client, network["worker_plain"], fund_id, await new_case(client, network["worker_plain"]), amount_cents=900_000
    )
    assert pending.status_code == 201 and pending.json()["status"] == "pending_approval", pending.text
    reject = await client.post(
        f"/api/v1/disbursements/{pending.json()['id']}/reject",
        json={"reason": "client born 1990-04-12 is not eligible"},
        headers=network["approver"].headers,
    )
    assert_refused(reject, "reason")
    # A deposit note.
    deposit = await client.post(
        f"/api/v1/funds/{fund_id}/deposits",
        json={"amount_cents": 100, "source": "grant", "note": "donor: +33 1 23 45 67 89"},
        headers=network["admin"].headers,
    )
    assert_refused(deposit, "note")
    # Operation notes, a decline reason, an agreement note, a surge reason.
    assert_refused(await _operation(client, network, notes="suspect dob 12/04/1990"), "notes")
    hold_id = await _requested_hold(client, network)
    decline = await client.post(
        f"/api/v1/holds/{hold_id}/decline",
        json={"reason": "call our director at (514) 555-1234"},
        headers=network["shelter_a"].headers,
    )
    assert_refused(decline, "reason")
    still = await client.get(f"/api/v1/holds/{hold_id}", headers=network["shelter_a"].headers)
    assert still.json()["status"] == "requested"
    agreement = await client.post(
        "/api/v1/agreements",
        json={
            "pool_id": network.pools["a"].id,
            "beds": 1,
            "partner_org_id": network.orgs["police"].id,
            "note": "ask for sgt.smith@police.example",
        },
        headers=network["shelter_a"].headers,
    )
    assert_refused(agreement, "note")
    surge = await client.post(
        f"/api/v1/pools/{network.pools['a'].id}/surge",
        json={"beds": 2, "expires_at": later(hours=5), "reason": "call 514 555 1234 for keys"},
        headers=network["shelter_a"].headers,
    )
    assert_refused(surge, "reason")
    # Amounts, case codes, counts and times are not refused.
    surge = await client.post(
        f"/api/v1/pools/{network.pools['a'].id}/surge",
        json={"beds": 2, "expires_at": later(hours=5), "reason": "cold night, 2 cots until 07:00"},
        headers=network["shelter_a"].headers,
    )
    assert surge.status_code == 201, surge.text


async def _page_session(client: AsyncTestClient, who: str) -> str:
    login = await login_page_session(client, who)
    assert login.status_code in (302, 303), login.text
    token = client.cookies.get("csrftoken")
    assert token
    return token


async def test_a_refused_form_comes_back_with_what_was_typed_and_the_message_beside_the_field(
    client: AsyncTestClient, network: Network, fund_id: str, sessionmaker: async_sessionmaker
) -> None:
    case = await new_case(client, network["worker"])
    token = await _page_session(client, "worker")
    form = {
        "fund_id": fund_id,
        "case_code": case,
        "category": "calling_card",
        "amount": "25.50",
        "payee": "Bell prepaid",
        "note": "reach her at 514-555-1234 after 21:00",
        "_csrf_token": token,
    }
    refused = await client.post("/ledger/request", data=form, follow_redirects=False)
    assert refused.status_code == 422
    page = refused.text
    assert 'action="/ledger/request"' in page
    assert 'value="reach her at 514-555-1234 after 21:00"' in page  # what was typed, to rephrase
    assert "This looks like a phone number." in page and 'aria-invalid="true"' in page
    for name, value in (("payee", "Bell prepaid"), ("amount", "25.50")):
        assert re.search(rf'name="{name}"[^>]*value="{re.escape(value)}"', page), name
    assert f'<option value="{case}" selected>' in page
    async with sessionmaker() as db:
        assert (await db.execute(select(func.count()).select_from(Disbursement))).scalar_one() == 0
    # From an htmx form the same correction replaces the form in place, with what was typed.
    htmx = await client.post(
        "/ledger/request", data=form, headers={"HX-Request": "true", "x-csrftoken": token}, follow_redirects=False
    )
    assert htmx.status_code == 200 and 'id="request-form"' in htmx.text
    assert "This looks like a phone number." in htmx.text
    assert 'value="reach her at 514-555-1234 after 21:00"' in htmx.text
    async with sessionmaker() as db:
        assert (await db.execute(select(func.count()).select_from(Disbursement))).scalar_one() == 0
    # Sent again, rephrased, the request is made.
    sent = await client.post("/ledger/request", data={**form, "note": "reach her after 21:00"}, follow_redirects=False)
    assert sent.status_code == 303, sent.text


async def test_a_refused_decline_on_the_requests_page_keeps_where_to_go_next(
    client: AsyncTestClient, network: Network
) -> None:
    hold_id = await _requested_hold(client, network)
    token = await _page_session(client, "shelter_a")
    form = {"reason": "full; call 06 12 34 56 78", "next": "/requests", "_csrf_token": token}
    refused = await client.post(f"/holds/{hold_id}/decline", data=form, follow_redirects=False)
    assert refused.status_code == 422
    assert f'action="/holds/{hold_id}/decline"' in refused.text
    assert 'name="next" value="/requests"' in refused.text and ">full; call 06 12 34 56 78</textarea>" in refused.text
    still = await client.get(f"/api/v1/holds/{hold_id}", headers=network["shelter_a"].headers)
    assert still.json()["status"] == "requested"
    declined = await client.post(
        f"/holds/{hold_id}/decline", data={**form, "reason": "full tonight"}, follow_redirects=False
    )
    assert declined.status_code == 303 and declined.headers["location"] == "/requests"


async def test_every_free_text_field_says_not_to_enter_identifying_details_in_english_and_french(
    client: AsyncTestClient, network: Network, fund_id: str
) -> None:
    hold_id = await _requested_hold(client, network)
    english = "Do not enter names or identifying details: no phone number, e-mail address or date of birth."
    french = "N'inscrivez ni nom ni détail permettant d'identifier une personne"
    pages = {
        "worker": ["/ledger/request"],
        "police": ["/operations"],
        "shelter_a": ["/agreements", "/requests", f"/facilities/{network.facilities['a'].id}"],
    }
    for who, paths in pages.items():
        client.cookies.clear()
        await _page_session(client, who)
        for path in paths:
            page = await client.get(path)
            assert page.status_code == 200, path
            assert english in page.text, path
            assert 'aria-describedby="' in page.text, path
            fr = await client.get(path, headers={"Accept-Language": "fr"})
            assert french in html.unescape(fr.text), path
    assert hold_id


# --- point 13: a body too deep to decode, a header line, the donate form, the CSP -----------------------------


async def test_a_body_nested_too_deep_to_decode_is_a_400_not_a_500(client: AsyncTestClient, network: Network) -> None:
    body = b"[" * 200_000
    for path, who in (
        ("/api/v1/auth/token", None),
        ("/api/v1/operations", "police"),
        ("/api/v1/holds", "police"),
        ("/api/v1/disbursements", "worker"),
        (f"/api/v1/pools/{network.pools['a'].id}/surge", "shelter_a"),
    ):
        headers = {"content-type": "application/json", **(network[who].headers if who else {})}
        response = await client.post(path, content=body, headers=headers)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"] == "invalid_body", path
    # The same depth inside an object, and a deep body that does decode, are still answered.
    deep = await client.post(
        "/api/v1/operations",
        content=b'{"code_name": ' + b"[" * 200_000,
        headers={"content-type": "application/json", **network["police"].headers},
    )
    assert deep.status_code == 400, deep.text


def test_an_e_mail_header_is_one_line_whatever_the_organisation_is_called() -> None:
    hold = Hold(
        id="h1",
        pool_id="p1",
        facility_id="f1",
        beds=2,
        service_name="Police\r\nBcc: everyone@evil.example\nX-Injected: yes",
        respond_by=datetime(2026, 12, 1, 21, 0, tzinfo=UTC),
        auto_confirmed=False,
    )
    settings = Settings(smtp_from="refuge@example.org\nBcc: evil@example.org")
    message = request_mail(settings, hold, "alpha@shelter.test\r\nCc: evil@example.org")
    sent = message_from_string(message.as_string())
    assert set(sent.keys()) == {"From", "To", "Subject", "Content-Type", "Content-Transfer-Encoding", "MIME-Version"}
    assert message["Subject"] == "Hold request: 2 bed(s) for Police Bcc: everyone@evil.example X-Injected: yes"
    assert "\n" not in str(message["To"]) and "\n" not in str(message["From"])
    assert header_value("a\x00b\u2028c\td") == "a b c d"


async def test_a_newline_in_an_organisation_name_does_not_break_the_hold_or_its_mail(
    settings: Settings, network: Network, sessionmaker: async_sessionmaker
) -> None:
    async with sessionmaker() as db:
        police = await db.get(Organisation, network.orgs["police"].id)
        assert police is not None
        police.name = "Police\r\nBcc: everyone@evil.example"
        await db.commit()
    inbox = Inbox()
    port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        app = create_app(replace(settings, smtp_host="127.0.0.1", smtp_port=port))
        async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
            await _requested_hold(client, network)

            async def delivered() -> bool:
                return bool(inbox.messages)

            await eventually(delivered)
    finally:
        smtp.stop()
    ((recipients, raw),) = inbox.messages
    assert recipients == ["alpha@shelter.test"]
    message = message_from_bytes(raw)
    assert message["Bcc"] is None
    assert "\n" not in message["Subject"] and "Police Bcc: everyone@evil.example" in message["Subject"]


async def test_the_public_donate_form_is_rate_limited_per_address(
    settings: Settings, network: Network, fund_id: str
) -> None:
    limit = Settings().donations_per_minute
    app = create_app(replace(settings, donations_per_minute=limit))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        page = await client.get(f"/donate/{fund_id}")
        token = client.cookies.get("csrftoken")
        assert page.status_code == 200 and token
        for attempt in range(limit):
            answer = await client.post(f"/donate/{fund_id}", data={"amount": "10", "_csrf_token": token})
            assert answer.status_code != 429, attempt
        refused = await client.post(f"/donate/{fund_id}", data={"amount": "10", "_csrf_token": token})
        assert refused.status_code == 429
        # The page itself and the login form keep their own counts.
        assert (await client.get(f"/donate/{fund_id}")).status_code == 200
        login = await client.post("/api/v1/auth/token", json={"username": "worker", "password": "wrong"})
        assert login.status_code != 429


async def test_the_csp_lets_pages_connect_only_to_their_own_origin(client: AsyncTestClient) -> None:
    csp = (await client.get("/login")).headers["content-security-policy"]
    directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
    assert directives["connect-src"] == ["'self'"], csp
