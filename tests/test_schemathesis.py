"""Schemathesis against the live OpenAPI document: every API operation, several roles, no 5xx, every answer
matching the schema, and afterwards the bed and money invariants still hold.

Generated cases are sent to a real uvicorn (`live_server`) with a bearer token of each role. Half the cases
have their path parameters and the ids in their bodies replaced by real objects (a pool, a hold, an operation,
a disbursement, a fund, a case), so the fuzzing reaches the state-changing code, not only the 404s.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from beds.holds_models import Hold
from beds.models import BedPool
from beds.timeutil import utcnow
from ledger.deposits import deposit
from ledger.funds import create_fund
from ledger.models import Fund
from ledger.verify import check_books
from tests.conftest import PASSWORD, LiveServer, Network

ROLES = ["shelter_a", "police", "worker", "approver", "auditor", "admin"]
MAX_EXAMPLES = 4  # per operation and role
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, response_headers_conformance]
ACTIVE = ("requested", "confirmed")
# FINDING (reported, not fixed here: exchange/api/ledger.py is being edited by the ledger/Stripe engineers):
# GET /api/v1/funds/{fund_id}/journal is annotated `-> Response`, so the schema says "object" while it answers
# a JSON list (or CSV). Every other check still runs on it; only the body-shape check is left out.
KNOWN_SCHEMA_GAPS: set[tuple[str, str]] = set()
STATUSES: dict[tuple[str, str], set[int]] = {}


async def real_objects(http: requests.Session, live: LiveServer, network: Network, sessionmaker: Any) -> dict:
    async with sessionmaker() as session:
        fund = await create_fund(session, name="Fuzz Fund", currency="CAD")
        await deposit(session, fund.id, amount_cents=2_000_000, source="grant", actor_user_id=network["admin"].id)
        fund_id = fund.id

    def post(who: str, path: str, body: dict) -> dict:
        response = http.post(live.url + path, json=body, headers=network[who].headers, timeout=10)
        assert response.status_code in (200, 201), (path, response.text)
        return response.json()

    now = utcnow()
    operation = post(
        "police",
        "/api/v1/operations",
        {
            "code_name": "FUZZ",
            "province": "QC",
            "window_start": (now + timedelta(hours=1)).isoformat(),
            "window_end": (now + timedelta(hours=5)).isoformat(),
            "needs": [{"profile": "women", "count": 2}],
        },
    )
    hold = post(
        "police",
        "/api/v1/holds",
        {
            "pool_id": network.pools["a"].id,
            "beds": 1,
            "operation_id": operation["id"],
            "expires_at": (now + timedelta(hours=4)).isoformat(),
        },
    )
    case = post("worker", "/api/v1/cases", {})
    disbursement = post(
        "worker",
        "/api/v1/disbursements",
        {
            "fund_id": fund_id,
            "case_code": case["code"],
            "category": "hotel",
            "amount_cents": 40_000,
            "currency": "CAD",
            "payee": "Hotel",
            "nights": 2,
        },
    )
    agreement = post(
        "shelter_a",
        "/api/v1/agreements",
        {"pool_id": network.pools["a_family"].id, "beds": 1, "partner_org_id": network.orgs["police"].id},
    )
    csrf, sessions = page_sessions(http, live)
    return {
        "csrf": csrf,
        "sessions": sessions,
        "facility_id": network.facilities["a"].id,
        "pool_id": network.pools["a"].id,
        "operation_id": operation["id"],
        "hold_id": hold["id"],
        "fund_id": fund_id,
        "disbursement_id": disbursement["id"],
        "agreement_id": agreement["id"],
        "case_code": case["code"],
    }


def page_sessions(http: requests.Session, live: LiveServer) -> tuple[str, dict[str, str]]:
    """Pages ignore bearer tokens: each role logs in through the form for a session cookie."""
    csrf = http.get(live.url + "/login", timeout=10).cookies["csrftoken"]
    sessions = {}
    for who in ROLES:
        response = requests.post(
            live.url + "/login",
            data={"username": who, "password": PASSWORD, "next": "/"},
            headers={"x-csrftoken": csrf, "cookie": f"csrftoken={csrf}"},
            allow_redirects=False,
            timeout=10,
        )
        assert response.status_code == 303, who
        sessions[who] = response.cookies["session"]
    return csrf, sessions


REVOKING = {("POST", "/api/v1/auth/token/revoke"), ("DELETE", "/api/v1/auth/token")}


def credentials(key: tuple[str, str], who: str, live: LiveServer, network: Network, ids: dict) -> dict[str, str]:
    """A bearer token for the API; a session cookie and CSRF token for pages (which ignore bearer tokens)."""
    if key in REVOKING:
        # Revoking must not kill the token the rest of the run uses: log in for a token of its own.
        response = requests.post(
            live.url + "/api/v1/auth/token", json={"username": who, "password": PASSWORD}, timeout=10
        )
        return {"Authorization": "Bearer " + response.json()["token"]}
    if key[1].startswith("/api/"):
        return dict(network[who].headers)
    csrf = ids["csrf"]
    if key in (("POST", "/login"), ("POST", "/logout")):
        # Both end the session they are sent with (the id rotates at login): never the shared ones.
        return {"x-csrftoken": csrf, "cookie": f"csrftoken={csrf}"}
    return {"x-csrftoken": csrf, "cookie": f"csrftoken={csrf}; session={ids['sessions'][who]}"}


def use_real_ids(case: schemathesis.Case, ids: dict[str, str]) -> None:
    if case.path_parameters:
        case.path_parameters = {k: ids.get(k, v) for k, v in case.path_parameters.items()}
    if isinstance(case.body, dict):
        for key in ("pool_id", "fund_id", "operation_id", "case_code"):
            if key in case.body:
                case.body[key] = ids[key]


async def assert_invariants(sessionmaker: async_sessionmaker) -> None:
    async with sessionmaker() as session:
        pools = (await session.execute(select(BedPool))).scalars().all()
        for pool in pools:
            assert min(pool.capacity, pool.occupied, pool.out_of_service, pool.held) >= 0, pool
            assert pool.occupied + pool.out_of_service + pool.held <= pool.capacity, pool
        holds = (await session.execute(select(Hold))).scalars().all()
        for pool in pools:
            active = sum(h.beds for h in holds if h.pool_id == pool.id and h.status in ACTIVE)
            assert active == pool.held, (pool.id, active, pool.held)
        for fund in (await session.execute(select(Fund))).scalars().all():
            books = await check_books(session, fund.id)
            assert books.ok, books


def checks_for(key: tuple[str, str]) -> list[Any]:
    """The API answers what API.md documents; a page answers HTML, a redirect or a fragment for htmx, which the
    schema does not describe (Litestar documents a `Template | Redirect` handler as JSON). Pages are fuzzed for
    server errors and for the invariants after every call, not for the content types of the API contract."""
    if not key[1].startswith("/api/"):
        return [not_a_server_error]
    return [c for c in CHECKS if not (key in KNOWN_SCHEMA_GAPS and c is response_schema_conformance)]


def make_fuzz(operation: Any, key: tuple[str, str], who: str, live: LiveServer, network: Network, ids: dict) -> Any:
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(), real=st.sampled_from([True, True, True, False]))
    def fuzz(case: schemathesis.Case, real: bool) -> None:
        if real:
            use_real_ids(case, ids)
        response = case.call_and_validate(
            base_url=live.url,
            headers=credentials(key, who, live, network, ids),
            checks=checks_for(key),
            timeout=15,
            allow_redirects=False,
        )
        STATUSES.setdefault(key, set()).add(response.status_code)

    return fuzz


async def test_every_api_operation_survives_fuzzing_as_every_role(
    live_server: LiveServer, network: Network, sessionmaker: async_sessionmaker
) -> None:
    http = requests.Session()
    ids = await real_objects(http, live_server, network, sessionmaker)
    schema = schemathesis.openapi.from_url(
        live_server.url + "/schema/openapi.json", headers=network["admin"].headers, timeout=10
    )
    raw = http.get(live_server.url + "/schema/openapi.json", headers=network["admin"].headers, timeout=10).json()
    in_schema = {(m.upper(), p) for p, item in raw["paths"].items() for m in item if m != "parameters"}
    tested: set[tuple[str, str]] = set()
    failures: list[str] = []

    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)

        for who in ROLES:
            try:
                make_fuzz(operation, key, who, live_server, network, ids)()
            except Exception as exc:  # collect every operation's failure, then fail once with all of them
                failures.append(f"{key} as {who}: {type(exc).__name__}: {str(exc)[:1500]}")
        tested.add(key)

    assert tested == in_schema
    # The fuzzing got past guards and validation: at least half the operations answered 2xx/3xx.
    succeeded = {k for k, codes in STATUSES.items() if any(c < 400 for c in codes)}
    assert len(succeeded) >= len(in_schema) // 2, sorted(in_schema - succeeded)
    assert not failures, "\n\n".join(failures)
    await assert_invariants(sessionmaker)
    # After the storm the server still answers.
    assert http.get(live_server.url + "/api/v1/facilities", headers=network["police"].headers).status_code == 200
