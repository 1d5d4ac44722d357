"""The access-control matrix, generated from the app's own route table.

Every HTTP route of `app.routes` must have a row in `MATRIX`; a route without one fails
`test_every_route_has_a_row_in_the_matrix`, so a new route cannot ship without someone deciding who may call it.
Each row says, for every user of the test network (one of each role, with a second organisation where "own"
and "other" differ: shelter_a / shelter_b, police / police_other, worker / worker_plain) and for an anonymous
caller, what the route answers: `OK` (authorised; the handler ran: 2xx, 3xx, or a 400/409/422 about the input
or the state), or the refusal (401, 403, 404, or `LOGIN`, a redirect to the login page).

The path parameters point at real objects: facility and pool of shelter A, a police operation with a
confirmed hold at shelter A, a case of the community organisation with a confirmed hold at shelter B, a
pending disbursement for that case, a fund, a standing agreement, a user to disable.

While the matrix runs, every answer is searched for the confidential values (both addresses and intake
phones, both operations' code names, the case code): a user who may not see one must never receive it,
on any route. The websocket routes get the same treatment in `test_websocket_matrix`.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import websockets
from litestar import Litestar
from litestar.routes import HTTPRoute, WebSocketRoute
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import async_sessionmaker

from beds.timeutil import utcnow
from exchange.accounts.models import Organisation, OrgKind, Role, RoleGrant, User
from exchange.accounts.service import hash_password, issue_token
from ledger.deposits import deposit
from ledger.funds import create_fund
from tests.conftest import PASSWORD, PASSWORD_HASH, LiveServer, Network, Person, eventually, until_live

USERS = [
    "shelter_a",
    "shelter_b",
    "police",
    "police_other",
    "worker",
    "worker_plain",
    "approver",
    "approver_community",
    "dual",
    "auditor",
    "coordinator",
    "admin",
    "partner",
]
# A partner system (211 line, provincial board): the login guard refuses it everywhere but the few routes opened to
# it (the feed, the public directory, its own tokens), before any object is looked at.
PARTNER = "partner"
PEOPLE_USERS = [u for u in USERS if u != PARTNER]
ANON = "anonymous"
OK = "ok"
LOGIN = "login"  # a redirect to /login (a page GET without a session)


@dataclass(frozen=True)
class Rule:
    """Expected outcome per caller; `default` for users not named, `anonymous` for no credentials."""

    allowed: frozenset[str]
    default: str | int
    anonymous: str | int
    overrides: tuple[tuple[str, int], ...] = ()

    def expect(self, who: str) -> str | int:
        if who == ANON:
            return self.anonymous
        for name, status in self.overrides:
            if name == who:
                return status
        if who == PARTNER and who not in self.allowed:
            return 403
        return OK if who in self.allowed else self.default

    def but(self, **statuses: int) -> Rule:
        return Rule(self.allowed, self.default, self.anonymous, self.overrides + tuple(statuses.items()))


def PUBLIC() -> Rule:
    return Rule(frozenset(USERS), 403, OK)


def LOGGED_IN(anonymous: str | int = 401) -> Rule:
    return Rule(frozenset(PEOPLE_USERS), 403, anonymous)


def WITH_A_TOKEN() -> Rule:
    """Any account, partner systems included (DESIGN.md: they read the public directory and aggregated availability)."""
    return Rule(frozenset(USERS), 403, 401)


def ONLY(*users: str, denied: int = 403, anonymous: str | int = 401) -> Rule:
    """Only these users reach the handler; everybody else gets `denied`."""
    return Rule(frozenset(users), denied, anonymous)


def PAGE(rule: Rule) -> Rule:
    """A page GET: anonymous browsers are sent to the login page."""
    return Rule(rule.allowed, rule.default, LOGIN, rule.overrides)


SHELTER_STAFF = ("shelter_a", "shelter_b")
POLICE = ("police", "police_other")
CASE_WORKERS = ("worker", "worker_plain", "dual")
APPROVERS = ("approver", "approver_community", "dual")

# Roles whose role guard refuses with 403 before any object is looked at, versus parties to an object.
NOT_CASE_WORKER = {u: 403 for u in USERS if u not in CASE_WORKERS}
NOT_APPROVER_OR_WORKER = {u: 403 for u in USERS if u not in CASE_WORKERS + APPROVERS}

# The hold H1: police's operation hold at shelter A (confirmed). Parties: police, shelter_a, coordinators;
# anyone else is told it does not exist.
HOLD_PARTIES = ("police", "shelter_a", "coordinator")
# The operation of `police`: its own service and coordinators; anyone else gets 404.
OPERATION_READERS = ("police", "coordinator")
# The disbursement D1 (requested by `worker`): the requester, approvers, auditors; others get 404.
DISBURSEMENT_READERS = ("worker", "approver", "approver_community", "dual", "auditor")
# Placements: the roles that may read stays at all (each sees only its own).
PLACEMENT_READERS = (*SHELTER_STAFF, *CASE_WORKERS, "coordinator")

MATRIX: dict[tuple[str, str], Rule] = {
    # --- public ---------------------------------------------------------------------------------------------
    ("GET", "/login"): PUBLIC(),
    ("GET", "/favicon.ico"): PUBLIC(),
    ("GET", "/account"): PAGE(LOGGED_IN()),
    ("POST", "/account/password"): LOGGED_IN(),
    ("POST", "/account/time-zone"): LOGGED_IN(),
    # Web Push (exchange/oncall): a person's own subscriptions; another's, or none, is not found for anyone.
    ("GET", "/sw.js"): PUBLIC(),
    ("GET", "/notifications/panel"): PAGE(LOGGED_IN()),
    ("POST", "/notifications/subscriptions"): LOGGED_IN(),
    ("POST", "/notifications/subscriptions/{subscription_id}/remove"): Rule(frozenset(), 404, 401),
    ("GET", "/api/v1/push/subscriptions"): LOGGED_IN(),
    ("POST", "/api/v1/push/subscriptions"): LOGGED_IN(),
    ("DELETE", "/api/v1/push/subscriptions/{subscription_id}"): Rule(frozenset(), 404, 401),
    # The approvers' roster: approvers and network admins; a roster entry that does not exist is not found.
    ("GET", "/oncall/roster"): PAGE(ONLY(*APPROVERS, "admin")),
    ("POST", "/oncall/roster"): ONLY(*APPROVERS, "admin"),
    ("POST", "/oncall/roster/{entry_id}/remove"): ONLY().but(**{u: 404 for u in (*APPROVERS, "admin")}),
    # When shelter A answers and who is on call: its own staff (and network admins).
    ("GET", "/facilities/{facility_id}/answering"): PAGE(ONLY("shelter_a", "admin")),
    ("POST", "/facilities/{facility_id}/answering"): ONLY("shelter_a", "admin"),
    ("POST", "/login"): PUBLIC(),
    ("POST", "/api/v1/auth/token"): PUBLIC(),
    ("GET", "/static/{file_path}"): PUBLIC(),
    ("HEAD", "/static/{file_path}"): PUBLIC(),
    # --- any logged-in user ---------------------------------------------------------------------------------
    ("GET", "/"): PAGE(LOGGED_IN()),
    ("GET", "/board/city"): PAGE(LOGGED_IN()),  # one city's facility cards, for the board's summary
    # Each role's home; the navigation's counts (empty for those who have none) and the lists behind them.
    ("GET", "/home"): PAGE(LOGGED_IN()),
    ("GET", "/home/counts"): PAGE(LOGGED_IN()),
    ("GET", "/home/requests"): PAGE(ONLY(*SHELTER_STAFF)),
    ("GET", "/home/approvals"): PAGE(ONLY(*APPROVERS)),
    ("GET", "/facilities/{facility_id}"): PAGE(LOGGED_IN()),
    ("GET", "/api/v1/facilities"): LOGGED_IN(),
    ("GET", "/api/v1/facilities/{facility_id}"): LOGGED_IN(),
    ("GET", "/api/v1/operations"): LOGGED_IN(),  # filtered: only what the caller may see
    ("POST", "/settings/locale"): LOGGED_IN(),
    ("POST", "/logout"): LOGGED_IN(),
    ("GET", "/api/v1/auth/tokens"): WITH_A_TOKEN(),
    ("POST", "/api/v1/auth/token/revoke"): WITH_A_TOKEN(),
    ("DELETE", "/api/v1/auth/token"): WITH_A_TOKEN(),
    ("GET", "/ledger"): PAGE(LOGGED_IN()),  # a redirect to what the user's role does in the ledger
    # The API description needs a login (it names every route, not data); JSON paths answer 401.
    ("GET", "/schema"): PUBLIC(),
    ("GET", "/schema/openapi.json"): PUBLIC(),
    ("GET", "/schema/openapi.yaml"): PUBLIC(),
    ("GET", "/schema/openapi.yml"): PUBLIC(),
    ("GET", "/schema/swagger"): PUBLIC(),
    ("GET", "/schema/redoc"): PUBLIC(),
    ("GET", "/schema/rapidoc"): PUBLIC(),
    ("GET", "/schema/elements"): PUBLIC(),
    ("GET", "/schema/oauth2-redirect.html"): PUBLIC(),
    ("GET", "/schema/{path}"): PUBLIC(),
    # --- shelter staff of the facility (shelter_b is staff of another shelter: 403) -------------------------
    ("POST", "/api/v1/pools/{pool_id}/adjust"): ONLY("shelter_a"),
    ("PUT", "/api/v1/pools/{pool_id}"): ONLY("shelter_a"),
    ("POST", "/api/v1/pools/{pool_id}/surge"): ONLY("shelter_a"),
    ("GET", "/api/v1/pools/{pool_id}/history"): ONLY("shelter_a"),
    ("POST", "/pools/{pool_id}/adjust"): ONLY("shelter_a"),
    ("POST", "/pools/{pool_id}/counts"): ONLY("shelter_a"),
    ("POST", "/pools/{pool_id}/surge"): ONLY("shelter_a"),
    ("POST", "/facilities/{facility_id}/confirm"): ONLY("shelter_a"),
    ("GET", "/requests"): PAGE(ONLY(*SHELTER_STAFF)),
    ("POST", "/requests/decline-requester"): ONLY(*SHELTER_STAFF),
    ("POST", "/api/v1/holds/decline-requester"): ONLY(*SHELTER_STAFF),
    ("POST", "/api/v1/holds/release-all"): ONLY("coordinator"),
    ("GET", "/holds/incident"): PAGE(ONLY("coordinator")),
    ("POST", "/holds/incident"): ONLY("coordinator"),
    ("GET", "/reports/occupancy"): PAGE(ONLY(*SHELTER_STAFF, "coordinator", "admin")),
    ("GET", "/agreements"): PAGE(ONLY(*SHELTER_STAFF)),
    # An agreement on shelter A's pool: only shelter A may offer its beds.
    ("POST", "/agreements"): ONLY("shelter_a"),
    ("POST", "/api/v1/agreements"): ONLY("shelter_a"),
    ("GET", "/api/v1/agreements"): ONLY(*SHELTER_STAFF, "coordinator", "admin"),
    # Ending another shelter's agreement: the role passes, the agreement is not theirs.
    ("POST", "/api/v1/agreements/{agreement_id}/end"): ONLY("shelter_a").but(shelter_b=404),
    ("POST", "/agreements/{agreement_id}/end"): ONLY("shelter_a").but(shelter_b=404),
    ("POST", "/api/v1/agreements/{agreement_id}/kept"): ONLY("shelter_a").but(shelter_b=404),
    ("POST", "/agreements/{agreement_id}/kept"): ONLY("shelter_a").but(shelter_b=404),
    # --- police operations ----------------------------------------------------------------------------------
    ("POST", "/api/v1/operations"): ONLY(*POLICE),
    ("POST", "/operations"): ONLY(*POLICE),
    ("GET", "/operations"): PAGE(ONLY(*POLICE, "coordinator")),
    ("GET", "/api/v1/operations/{operation_id}"): ONLY(*OPERATION_READERS, denied=404),
    ("GET", "/operations/{operation_id}"): PAGE(ONLY(*OPERATION_READERS, denied=404)),
    ("POST", "/api/v1/operations/{operation_id}/plan"): ONLY(*OPERATION_READERS, denied=404),
    ("POST", "/operations/{operation_id}/plan"): ONLY(*OPERATION_READERS, denied=404),
    ("POST", "/api/v1/operations/{operation_id}/allocate"): ONLY(*OPERATION_READERS, denied=404),
    ("POST", "/operations/{operation_id}/allocate"): ONLY(*OPERATION_READERS, denied=404),
    # --- holds: parties see it; the step decides who may take it --------------------------------------------
    ("POST", "/api/v1/holds"): ONLY(*POLICE, *CASE_WORKERS),
    ("GET", "/api/v1/holds/{hold_id}"): ONLY(*HOLD_PARTIES, denied=404),
    ("POST", "/api/v1/holds/{hold_id}/confirm"): ONLY("shelter_a", denied=404).but(police=403, coordinator=403),
    ("POST", "/holds/{hold_id}/confirm"): ONLY("shelter_a", denied=404).but(police=403, coordinator=403),
    ("POST", "/api/v1/holds/{hold_id}/decline"): ONLY("shelter_a", denied=404).but(police=403, coordinator=403),
    ("POST", "/holds/{hold_id}/decline"): ONLY("shelter_a", denied=404).but(police=403, coordinator=403),
    ("POST", "/api/v1/holds/{hold_id}/release"): ONLY("police", denied=404).but(shelter_a=403, coordinator=403),
    ("POST", "/holds/{hold_id}/release"): ONLY("police", denied=404).but(shelter_a=403, coordinator=403),
    ("POST", "/api/v1/holds/{hold_id}/claim"): ONLY("police", "shelter_a", denied=404).but(coordinator=403),
    ("POST", "/holds/{hold_id}/claim"): ONLY("police", "shelter_a", denied=404).but(coordinator=403),
    # --- cases and the fund ---------------------------------------------------------------------------------
    ("POST", "/api/v1/cases"): ONLY(*CASE_WORKERS),
    ("POST", "/ledger/cases"): ONLY(*CASE_WORKERS),
    ("GET", "/api/v1/funds"): ONLY(*CASE_WORKERS, *APPROVERS, "auditor", "admin"),
    ("GET", "/api/v1/funds/{fund_id}"): ONLY(*APPROVERS, "auditor", "admin"),
    ("POST", "/api/v1/funds/{fund_id}/deposits"): ONLY("admin"),
    ("GET", "/api/v1/funds/{fund_id}/journal"): ONLY("auditor"),
    ("GET", "/api/v1/funds/{fund_id}/audit"): ONLY("auditor"),
    ("GET", "/ledger/journal"): PAGE(ONLY("auditor")),
    ("GET", "/ledger/journal.csv"): PAGE(ONLY("auditor")),
    ("GET", "/ledger/report"): PAGE(ONLY("auditor", *APPROVERS, "admin")),
    # Approvers see the rules and approve an admin's pending version (a second person); only admins edit.
    ("GET", "/ledger/rules"): PAGE(ONLY("admin", *APPROVERS)),
    ("POST", "/ledger/rules"): ONLY("admin"),
    ("POST", "/ledger/rules/approve"): ONLY("admin", *APPROVERS),
    ("POST", "/ledger/rules/preview"): ONLY("admin"),
    ("POST", "/ledger/rules/form"): ONLY("admin"),
    ("POST", "/ledger/rules/restore"): ONLY("admin"),
    ("POST", "/ledger/request/path"): ONLY(*CASE_WORKERS),
    ("GET", "/ledger/inbox"): PAGE(ONLY(*APPROVERS)),
    ("GET", "/ledger/request"): PAGE(ONLY(*CASE_WORKERS)),
    ("POST", "/ledger/request"): ONLY(*CASE_WORKERS),
    ("POST", "/api/v1/disbursements"): ONLY(*CASE_WORKERS),
    ("GET", "/api/v1/disbursements/{disbursement_id}"): ONLY(*DISBURSEMENT_READERS, denied=404),
    ("GET", "/ledger/requests/{disbursement_id}"): PAGE(ONLY(*DISBURSEMENT_READERS, denied=404)),
    ("POST", "/api/v1/disbursements/{disbursement_id}/approve"): ONLY(*APPROVERS),
    ("POST", "/ledger/requests/{disbursement_id}/approve"): ONLY(*APPROVERS),
    ("POST", "/api/v1/disbursements/{disbursement_id}/reject"): ONLY(*APPROVERS),
    ("POST", "/ledger/requests/{disbursement_id}/reject"): ONLY(*APPROVERS),
    # Cancel: the requester only. Another case worker of the same organisation does not even see it;
    # `dual` sees it as an approver but did not ask for it.
    ("POST", "/api/v1/disbursements/{disbursement_id}/cancel"): ONLY("worker").but(worker_plain=404, dual=403),
    ("POST", "/ledger/requests/{disbursement_id}/cancel"): ONLY("worker").but(worker_plain=404, dual=403),
    # The requester (worker) does not record the payment of their own request.
    ("POST", "/api/v1/disbursements/{disbursement_id}/pay"): ONLY(*APPROVERS).but(worker_plain=404),
    ("POST", "/ledger/requests/{disbursement_id}/pay"): ONLY(*APPROVERS).but(worker_plain=404),
    # Recurring travel: the requester or an approver draws a trip (exchange/fund/service.py `draw_trip`).
    ("POST", "/api/v1/disbursements/{disbursement_id}/trips"): ONLY("worker", *APPROVERS).but(worker_plain=404),
    ("POST", "/ledger/requests/{disbursement_id}/trips"): ONLY("worker", *APPROVERS).but(worker_plain=404),
    # --- Stripe: cards, donations, reconciliation, the webhook ----------------------------------------------
    ("GET", "/api/v1/disbursements/{disbursement_id}/card"): ONLY(*DISBURSEMENT_READERS, denied=404),
    ("POST", "/api/v1/disbursements/{disbursement_id}/card/close"): ONLY("worker", *APPROVERS).but(worker_plain=404),
    ("GET", "/stripe/cards"): PAGE(ONLY(*CASE_WORKERS, *APPROVERS)),
    ("POST", "/stripe/cards/{disbursement_id}/issue"): ONLY("worker", *APPROVERS).but(worker_plain=404),
    ("POST", "/stripe/cards/{disbursement_id}/close"): ONLY("worker", *APPROVERS).but(worker_plain=404),
    ("GET", "/api/v1/funds/{fund_id}/reconciliation"): ONLY("auditor"),
    ("GET", "/stripe/reconcile"): PAGE(ONLY("auditor")),
    ("GET", "/donate/{fund_id}"): PUBLIC(),  # donors have no account
    ("POST", "/donate/{fund_id}"): PUBLIC(),
    ("GET", "/donate/{fund_id}/thanks"): PUBLIC(),
    ("POST", "/webhooks/stripe"): PUBLIC(),  # Stripe's signature is the credential
    # --- network admin --------------------------------------------------------------------------------------
    ("GET", "/admin"): PAGE(ONLY("admin")),
    ("POST", "/admin/organisations"): ONLY("admin"),
    ("POST", "/admin/users"): ONLY("admin"),
    ("POST", "/admin/users/{user_id}/disable"): ONLY("admin"),
    ("POST", "/admin/users/{user_id}/enable"): ONLY("admin"),
    ("POST", "/admin/users/{user_id}/unlock"): ONLY("admin"),
    ("POST", "/admin/users/{user_id}/roles"): ONLY("admin"),
    ("POST", "/admin/facilities"): ONLY("admin"),
    ("GET", "/admin/facilities/{facility_id}"): PAGE(ONLY("admin")),
    ("POST", "/admin/facilities/{facility_id}"): ONLY("admin"),
    ("POST", "/admin/facilities/{facility_id}/pools"): ONLY("admin"),
    ("GET", "/admin/address-releases"): PAGE(ONLY("admin")),
    # The directory exchange (issue 14): the public directory and availability for any user; imports for admins.
    ("GET", "/api/v1/hsds/organizations"): WITH_A_TOKEN(),
    ("GET", "/api/v1/hsds/services"): WITH_A_TOKEN(),
    ("GET", "/api/v1/hsds/package.zip"): WITH_A_TOKEN(),
    ("GET", "/api/v1/edxl/have"): WITH_A_TOKEN(),
    ("GET", "/api/v1/availability.have.xml"): WITH_A_TOKEN(),
    ("GET", "/api/v1/occupancy.csv"): ONLY("coordinator"),
    # The partner feed: free beds per city and profile, for partner systems and coordinators.
    ("GET", "/api/v1/feed/availability"): ONLY(PARTNER, "coordinator"),  # funders' export: coordinators see every hold
    ("GET", "/admin/directory"): PAGE(ONLY("admin")),
    ("GET", "/admin/directory/package.zip"): PAGE(ONLY("admin")),
    ("POST", "/admin/directory/import"): ONLY("admin"),
    # Role grants waiting for a second person (the grant G1: fund approver for matrix_victim of the community
    # organisation, asked by the admin): listed to whoever may be a second person; decided by another admin or
    # a fund approver of another organisation than the admin's. The admin who asked is refused.
    ("GET", "/admin/grants"): PAGE(ONLY(*SHELTER_STAFF, *POLICE, *APPROVERS, "auditor", "coordinator", "admin")),
    ("GET", "/api/v1/admin/grants"): ONLY(*SHELTER_STAFF, *POLICE, *APPROVERS, "auditor", "coordinator", "admin"),
    ("POST", "/api/v1/admin/grants/{grant_id}/approve"): ONLY("approver_community", "dual"),
    ("POST", "/api/v1/admin/grants/{grant_id}/refuse"): ONLY("approver_community", "dual"),
    ("POST", "/admin/grants/{grant_id}/approve"): ONLY("approver_community", "dual"),
    ("POST", "/admin/grants/{grant_id}/refuse"): ONLY("approver_community", "dual"),
    # Closing a case: the case workers of its organisation (all of the matrix's are of the community's).
    ("POST", "/api/v1/cases/{code}/close"): ONLY(*CASE_WORKERS),
    ("POST", "/ledger/cases/{code}/close"): ONLY(*CASE_WORKERS),
    # Placements (stays): the facilities' staff, case workers and coordinators; a stay or follow-up that does not
    # exist (or that they may not see) is not found. A pool's Departure question: that facility's staff only.
    ("GET", "/api/v1/placements"): ONLY(*PLACEMENT_READERS),
    ("GET", "/api/v1/placements/{placement_id}"): ONLY().but(**{u: 404 for u in PLACEMENT_READERS}),
    ("PATCH", "/api/v1/placements/{placement_id}"): ONLY().but(**{u: 404 for u in PLACEMENT_READERS}),
    ("POST", "/api/v1/placements/{placement_id}/end"): ONLY().but(**{u: 404 for u in PLACEMENT_READERS}),
    ("POST", "/api/v1/placements/follow-ups/{follow_up_id}/done"): ONLY().but(**{u: 404 for u in PLACEMENT_READERS}),
    ("GET", "/placements"): PAGE(ONLY(*PLACEMENT_READERS)),
    ("GET", "/placements/departure/{pool_id}"): PAGE(ONLY("shelter_a")),
    ("POST", "/placements/{placement_id}/end"): ONLY().but(**{u: 404 for u in PLACEMENT_READERS}),
    ("POST", "/placements/{placement_id}/expected-end"): ONLY().but(**{u: 404 for u in PLACEMENT_READERS}),
    ("POST", "/placements/follow-ups/{follow_up_id}/done"): ONLY().but(**{u: 404 for u in CASE_WORKERS}),
}

# Websocket routes: who may connect (the events each receives are checked in test_websocket_matrix).
WEBSOCKETS: dict[str, str] = {
    "/api/v1/stream": "any logged-in user (bearer or session cookie), Origin checked; events filtered per user",
    "/board/ws": "any logged-in user but a partner (session cookie), Origin checked; HTML fragments filtered",
}

# Routes Litestar answers on its own (CORS preflight), never reaching a handler's code.
AUTOMATIC_METHODS = {"OPTIONS"}


def _template(path: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def route_table(app: Litestar) -> tuple[set[tuple[str, str]], set[str]]:
    http: set[tuple[str, str]] = set()
    sockets: set[str] = set()
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                for method in handler.http_methods:
                    if method not in AUTOMATIC_METHODS:
                        http.add((method, _template(route.path)))
        elif isinstance(route, WebSocketRoute):
            sockets.add(_template(route.path))
    return http, sockets


def test_every_route_has_a_row_in_the_matrix(app: Litestar) -> None:
    http, sockets = route_table(app)
    missing = sorted(http - set(MATRIX))
    assert not missing, f"routes without an access rule in MATRIX: {missing}"
    stale = sorted(set(MATRIX) - http)
    assert not stale, f"MATRIX rows for routes that no longer exist: {stale}"
    assert sockets == set(WEBSOCKETS)


@pytest.fixture(name="network")
async def fixture_network_with_partner(network: Network, sessionmaker: async_sessionmaker) -> Network:
    """The test network and a partner system's account in an organisation of its own."""
    async with sessionmaker() as session:
        org = Organisation(name="partner org", kind=OrgKind.COMMUNITY, province="QC")
        session.add(org)
        await session.flush()
        user = User(username=PARTNER, password_hash=PASSWORD_HASH, organisation_id=org.id, roles=[Role.PARTNER])
        session.add(user)
        await session.commit()
        network.orgs[PARTNER] = org
        network.people[PARTNER] = Person(user, await issue_token(session, user))
    return network


# --- the objects behind the path parameters --------------------------------------------------------------------


@dataclass
class World:
    ids: dict[str, str]
    secrets: dict[str, tuple[str, frozenset[str]]]  # name -> (value, users who may see it)
    session_cookies: dict[str, str]
    csrf: str


async def build_world(client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker) -> World:
    def h(name: str) -> dict[str, str]:
        return network[name].headers

    pool_a, pool_b = network.pools["a"].id, network.pools["b"].id
    async with sessionmaker() as session:
        fund = await create_fund(session, name="Matrix Fund", currency="CAD")
        await deposit(session, fund.id, amount_cents=5_000_000, source="grant", actor_user_id=network["admin"].id)
        victim = User(
            username="matrix_victim",
            password_hash=hash_password(PASSWORD),
            organisation_id=network.orgs["community"].id,
            roles=["case_worker"],
        )
        session.add(victim)
        await session.flush()
        grant = RoleGrant(
            user_id=victim.id,
            organisation_id=victim.organisation_id,
            roles=["fund_approver"],
            requested_by_user_id=network["admin"].id,
            requested_by_org_id=network.orgs["coalition"].id,
        )
        session.add(grant)
        await session.commit()
        fund_id, victim_id, grant_id = fund.id, victim.id, grant.id

    now = utcnow()
    window = {
        "window_start": (now + timedelta(hours=2)).isoformat(),
        "window_end": (now + timedelta(hours=8)).isoformat(),
    }
    op = await client.post(
        "/api/v1/operations",
        json={"code_name": "NIGHTJAR-OWN", "province": "QC", "needs": [{"profile": "women", "count": 1}], **window},
        headers=h("police"),
    )
    assert op.status_code == 201, op.text
    op_other = await client.post(
        "/api/v1/operations",
        json={"code_name": "KESTREL-OTHER", "province": "ON", "needs": [{"profile": "men", "count": 1}], **window},
        headers=h("police_other"),
    )
    assert op_other.status_code == 201, op_other.text
    agreement = await client.post(
        "/api/v1/agreements",
        json={"pool_id": pool_a, "beds": 1, "partner_org_id": network.orgs["police"].id},
        headers=h("shelter_a"),
    )
    assert agreement.status_code == 201, agreement.text
    expires = (now + timedelta(hours=6)).isoformat()
    hold = await client.post(
        "/api/v1/holds",
        json={"pool_id": pool_a, "beds": 1, "operation_id": op.json()["id"], "expires_at": expires},
        headers=h("police"),
    )
    assert hold.status_code == 201, hold.text
    if hold.json()["status"] == "requested":
        assert (
            await client.post(f"/api/v1/holds/{hold.json()['id']}/confirm", headers=h("shelter_a"))
        ).status_code == 200
    case = await client.post("/api/v1/cases", json={}, headers=h("worker"))
    assert case.status_code == 201
    case_code = case.json()["code"]
    case_hold = await client.post(
        "/api/v1/holds",
        json={"pool_id": pool_b, "beds": 1, "case_code": case_code, "expires_at": expires},
        headers=h("worker"),
    )
    assert case_hold.status_code == 201, case_hold.text
    confirm_b = await client.post(f"/api/v1/holds/{case_hold.json()['id']}/confirm", headers=h("shelter_b"))
    assert confirm_b.status_code == 200, confirm_b.text
    disbursement = await client.post(
        "/api/v1/disbursements",
        json={
            "fund_id": fund_id,
            "case_code": case_code,
            "category": "hotel",
            "amount_cents": 45_000,
            "currency": "CAD",
            "payee": "Hôtel Matrix",
            "nights": 3,
        },
        headers=h("worker"),
    )
    assert disbursement.status_code == 201, disbursement.text
    assert disbursement.json()["status"] == "pending_approval"

    login = await client.get("/login")
    csrf = login.cookies.get("csrftoken") or client.cookies.get("csrftoken")
    sessions: dict[str, str] = {}
    for name in USERS:
        client.cookies.clear()
        response = await client.post(
            "/login",
            data={"username": name, "password": PASSWORD, "next": "/"},
            headers={"x-csrftoken": csrf, "cookie": f"csrftoken={csrf}"},
            follow_redirects=False,
        )
        assert response.status_code == 303, (name, response.status_code)
        sessions[name] = response.cookies["session"]
    client.cookies.clear()

    fa, fb = network.facilities["a"], network.facilities["b"]
    community_case_workers = frozenset(CASE_WORKERS)
    return World(
        ids={
            "facility_id": fa.id,
            "pool_id": pool_a,
            "operation_id": op.json()["id"],
            "hold_id": hold.json()["id"],
            "agreement_id": agreement.json()["id"],
            "fund_id": fund_id,
            "disbursement_id": disbursement.json()["id"],
            "user_id": victim_id,
            "file_path": "app.css",
            "path": "openapi.json",
            "case_code": case_code,
            "code": case_code,
            "grant_id": grant_id,
            "subscription_id": "no-such-subscription",
            "entry_id": "no-such-roster-entry",
            "placement_id": "no-such-placement",
            "follow_up_id": "no-such-follow-up",
        },
        secrets={
            # Shelter A's address: its staff, and police whose operation hold there is confirmed.
            "address_a": (fa.address, frozenset({"shelter_a", "police"})),
            "phone_a": (fa.intake_phone, frozenset({"shelter_a", "police"})),
            # Shelter B's address: its staff, and the community organisation's case workers (confirmed case hold).
            "address_b": (fb.address, frozenset({"shelter_b"}) | community_case_workers),
            "phone_b": (fb.intake_phone, frozenset({"shelter_b"}) | community_case_workers),
            "operation_own": ("NIGHTJAR-OWN", frozenset({"police", "coordinator"})),
            "operation_other": ("KESTREL-OTHER", frozenset({"police_other", "coordinator"})),
            # The case: its organisation's case workers, approvers and auditors; never police or shelters.
            "case_code": (
                case_code,
                community_case_workers | frozenset({"approver", "approver_community", "auditor"}),
            ),
        },
        session_cookies=sessions,
        csrf=csrf,
    )


def request_body(method: str, path: str, world: World) -> dict[str, Any]:
    """A body that passes validation, so the handler's own object checks decide (guards run before parsing)."""
    future = (utcnow() + timedelta(hours=5)).isoformat()
    ids = world.ids
    api: dict[str, Any] = {
        "/api/v1/auth/token": {"username": "matrix_victim", "password": PASSWORD},
        "/api/v1/pools/{pool_id}/adjust": {"occupied_delta": 0},
        "/api/v1/placements/{placement_id}": {"expected_end": None},
        "/api/v1/pools/{pool_id}": {"capacity": 10, "occupied": 4, "out_of_service": 0, "version": 999},
        "/api/v1/pools/{pool_id}/surge": {"beds": 1, "expires_at": future},
        "/api/v1/operations": {
            "code_name": "MATRIX",
            "province": "QC",
            "window_start": future,
            "window_end": future,
            "needs": [{"profile": "women", "count": 1}],
        },
        "/api/v1/operations/{operation_id}/plan": {},
        "/api/v1/operations/{operation_id}/allocate": {},
        "/api/v1/holds": {"pool_id": world.ids["pool_id"], "beds": 99, "expires_at": future},
        "/api/v1/holds/{hold_id}/decline": {"reason": "full"},
        # Bulk steps with a body they refuse (no reason, no target): the matrix's holds must live on.
        "/api/v1/holds/decline-requester": {"requested_by": "nobody", "reason": ""},
        "/api/v1/holds/release-all": {},
        "/api/v1/holds/{hold_id}/claim": {"beds_used": 99},
        "/api/v1/agreements": {"pool_id": ids["pool_id"], "beds": 999},
        "/api/v1/agreements/{agreement_id}/kept": {"beds": 999},
        "/api/v1/cases": {},
        "/api/v1/funds/{fund_id}/deposits": {"amount_cents": 0, "source": "grant", "note": ""},
        "/api/v1/disbursements": {
            "fund_id": ids["fund_id"],
            "case_code": ids["case_code"],
            "category": "calling_card",
            "amount_cents": -1,
            "currency": "CAD",
            "payee": "x",
        },
        "/api/v1/disbursements/{disbursement_id}/reject": {"reason": ""},
        "/api/v1/disbursements/{disbursement_id}/pay": {"method": "manual", "amount_cents": 10**9},
        "/api/v1/disbursements/{disbursement_id}/trips": {"amount_cents": 10**9, "date": "2026-12-15"},
    }
    form: dict[str, Any] = {
        "/login": {"username": "matrix_victim", "password": PASSWORD, "next": "/"},
        "/settings/locale": {"locale": "en"},
        "/pools/{pool_id}/adjust": {"occupied_delta": "0"},
        "/pools/{pool_id}/counts": {"capacity": "10", "occupied": "4", "out_of_service": "0", "version": "999"},
        "/pools/{pool_id}/surge": {"beds": "0", "hours": "1", "reason": ""},
        "/operations": {"code_name": "MATRIX", "province": "QC", "window_start": "x", "window_end": "x"},
        "/operations/{operation_id}/plan": {},
        "/operations/{operation_id}/allocate": {},
        "/holds/{hold_id}/confirm": {"next": "/"},
        "/holds/{hold_id}/decline": {"reason": "full", "next": "/"},
        "/requests/decline-requester": {"requested_by": "nobody", "reason": "full"},
        "/holds/incident": {"target": "nobody", "reason": ""},
        "/holds/{hold_id}/release": {"next": "/"},
        "/holds/{hold_id}/claim": {"beds_used": "99", "next": "/"},
        "/agreements": {"pool_id": ids["pool_id"], "beds": "999"},
        "/agreements/{agreement_id}/kept": {"beds": "999"},
        "/ledger/request": {"fund_id": ids["fund_id"], "case_code": ids["case_code"], "category": "x", "amount": "x"},
        "/ledger/requests/{disbursement_id}/reject": {"reason": ""},
        "/ledger/requests/{disbursement_id}/pay": {"amount": "999999999"},
        "/ledger/rules": {"fund_id": ids["fund_id"], "document": "{"},
        "/ledger/rules/preview": {"fund_id": ids["fund_id"], "document": "{"},
        "/ledger/rules/form": {"fund_id": ids["fund_id"], "fast_path_amount": "x"},
        "/ledger/rules/restore": {"fund_id": ids["fund_id"], "version": "none"},
        "/ledger/request/path": {"fund_id": ids["fund_id"], "case_code": ids["case_code"], "category": "x"},
        "/ledger/rules/approve": {"fund_id": ids["fund_id"], "version": "none"},
        "/donate/{fund_id}": {"amount": "10"},
        "/admin/organisations": {"name": "", "kind": "nope"},
        "/admin/users": {"username": ""},
        "/admin/facilities": {"name": ""},
        "/admin/facilities/{facility_id}": {"name": ""},
        "/admin/facilities/{facility_id}/pools": {"profile": "nope", "capacity": "-1"},
    }
    if method in ("GET", "HEAD", "DELETE"):
        return {}
    if path.startswith("/api/"):
        return {"json": api.get(path, {})} if path in api else {}
    return {"data": form.get(path, {})}


def _headers_for(who: str, path: str, world: World, network: Network) -> dict[str, str]:
    if who == ANON:
        return {"x-csrftoken": world.csrf, "cookie": f"csrftoken={world.csrf}"}
    if path.startswith("/api/"):
        return dict(network[who].headers)
    return {"x-csrftoken": world.csrf, "cookie": f"csrftoken={world.csrf}; session={world.session_cookies[who]}"}


def outcome(method: str, status: int, location: str) -> str | int:
    if status in (401, 403, 404):
        return status
    if method == "GET" and status in (302, 303, 307) and location.startswith("/login"):
        return LOGIN
    assert status < 500, f"server error {status}"
    return OK


def _order(key: tuple[str, str]) -> tuple[int, str, str]:
    # Logging in (the session id rotates) or out ends the session the rest of the matrix uses, and revoking
    # a token kills the bearer: these run last.
    method, path = key
    if path == "/login":
        return (2, path, method)
    return (1 if path == "/logout" else 0, path, method)


REVOKING = {("POST", "/api/v1/auth/token/revoke"), ("DELETE", "/api/v1/auth/token")}


async def test_access_matrix(
    app: Litestar, client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    world = await build_world(client, network, sessionmaker)
    http, _ = route_table(app)
    mismatches: list[str] = []
    leaks: list[str] = []
    for method, path in sorted(http & set(MATRIX), key=_order):
        url = re.sub(r"\{(\w+)\}", lambda m: world.ids[m.group(1)], path)
        rule = MATRIX[(method, path)]
        for who in [*USERS, ANON]:
            client.cookies.clear()
            headers = _headers_for(who, path, world, network)
            if (method, path) in REVOKING and who != ANON:
                async with sessionmaker() as session:  # a token of its own to revoke
                    headers = {"Authorization": "Bearer " + await issue_token(session, network[who].user)}
            response = await client.request(
                method,
                url,
                headers=headers,
                follow_redirects=False,
                **request_body(method, path, world),
            )
            got = outcome(method, response.status_code, response.headers.get("location", ""))
            expected = rule.expect(who)
            if got != expected:
                mismatches.append(f"{method} {path} as {who}: expected {expected}, got {response.status_code}")
            body = response.text
            for name, (value, entitled) in world.secrets.items():
                if value and value in body and who not in entitled:
                    leaks.append(f"{method} {path} as {who} reveals {name}")
    client.cookies.clear()
    assert not leaks, "\n".join(leaks)
    assert not mismatches, "\n".join(mismatches)


async def test_confidential_fields_per_role(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    """The fields themselves (not only strings in a page): address and intake phone, case code, operation."""
    world = await build_world(client, network, sessionmaker)
    fa, fb = network.facilities["a"].id, network.facilities["b"].id
    for who in PEOPLE_USERS:  # the partner gets none of these routes (test_access_matrix)
        h = network[who].headers
        for fid, secret in ((fa, "address_a"), (fb, "address_b")):
            body = (await client.get(f"/api/v1/facilities/{fid}", headers=h)).json()
            may = who in world.secrets[secret][1]
            assert ("address" in body) == may, (who, fid, body.get("address"))
            assert ("intake_phone" in body) == may, (who, fid)
        listing = (await client.get("/api/v1/facilities", headers=h)).json()
        shown = {f["id"] for f in listing if "address" in f}
        assert shown == {fid for fid, s in ((fa, "address_a"), (fb, "address_b")) if who in world.secrets[s][1]}, who
        ops = (await client.get("/api/v1/operations", headers=h)).json()
        names = {o["code_name"] for o in ops}
        expected_ops = {v for k, (v, ent) in world.secrets.items() if k.startswith("operation") and who in ent}
        assert names == expected_ops, who
    # The facility's side of a case hold carries no case code until the person is placed.
    hold_view = await client.get(f"/api/v1/holds/{world.ids['hold_id']}", headers=network["shelter_a"].headers)
    assert hold_view.json()["case_code"] is None
    # Every release of an address to someone outside the shelter is in the audit log.
    from sqlalchemy import select

    from beds.audit import AddressRelease

    async with sessionmaker() as session:
        released = {(r.user_id, r.facility_id) for r in (await session.execute(select(AddressRelease))).scalars()}
    assert (network["police"].id, fa) in released
    assert (network["worker"].id, fb) in released


# --- websockets --------------------------------------------------------------------------------------------------


async def _collect(ws: Any, into: list[str]) -> None:
    try:
        async for message in ws:
            into.append(message if isinstance(message, str) else message.decode())
    except websockets.ConnectionClosed:
        return


@pytest.mark.parametrize("route", sorted(WEBSOCKETS))
async def test_websocket_matrix(
    route: str, live_server: LiveServer, network: Network, sessionmaker: async_sessionmaker
) -> None:
    """Each role connects; a pool change, a case hold and a disbursement happen; who received what."""
    import httpx

    ws_url = live_server.url.replace("http://", "ws://") + route
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        csrf = (await http.get("/login")).cookies["csrftoken"]
        cookies: dict[str, str] = {}
        for who in USERS:
            http.cookies.clear()
            r = await http.post(
                "/login",
                data={"username": who, "password": PASSWORD, "next": "/"},
                headers={"x-csrftoken": csrf, "cookie": f"csrftoken={csrf}"},
            )
            assert r.status_code == 303, who
            cookies[who] = r.cookies["session"]
        http.cookies.clear()

        # Anonymous and foreign-origin connections are refused in the handshake, before any event.
        for headers in ({}, {"cookie": f"session={cookies['police']}"}):
            origin = live_server.url if not headers else "https://evil.example"
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with websockets.connect(ws_url, origin=origin, additional_headers=headers) as ws:
                    await ws.recv()
            assert refused.value.response.status_code == 403
        # A partner system gets no board fragments; on the JSON stream only its cities' free beds (exchange/feed).
        partner_received: list[str] = []
        if route == "/board/ws":
            for headers in ({"cookie": f"session={cookies[PARTNER]}"}, dict(network[PARTNER].headers)):
                with pytest.raises(websockets.InvalidStatus) as refused:
                    async with websockets.connect(ws_url, origin=live_server.url, additional_headers=headers) as ws:
                        await ws.recv()
                assert refused.value.response.status_code == 403
        else:
            partner_ws = await websockets.connect(ws_url, additional_headers=dict(network[PARTNER].headers))
            await until_live(partner_ws)
            partner_task = asyncio.create_task(_collect(partner_ws, partner_received))

        received: dict[str, list[str]] = {who: [] for who in PEOPLE_USERS}
        sockets = []
        tasks = []
        for who in PEOPLE_USERS:
            ws = await websockets.connect(
                ws_url, origin=live_server.url, additional_headers={"cookie": f"session={cookies[who]}"}
            )
            sockets.append(ws)
            await until_live(ws)  # registered: it misses none of the changes below
            tasks.append(asyncio.create_task(_collect(ws, received[who])))

        h = lambda who: network[who].headers  # noqa: E731
        async with sessionmaker() as session:
            fund = await create_fund(session, name="WS Fund", currency="CAD")
            await deposit(session, fund.id, amount_cents=1_000_000, source="grant", actor_user_id=network["admin"].id)
            fund_id = fund.id
        adjust = await http.post(
            f"/api/v1/pools/{network.pools['a'].id}/adjust", json={"occupied_delta": 1}, headers=h("shelter_a")
        )
        assert adjust.status_code == 200
        case_code = (await http.post("/api/v1/cases", json={}, headers=h("worker"))).json()["code"]
        expires = (utcnow() + timedelta(hours=3)).isoformat()
        hold = await http.post(
            "/api/v1/holds",
            json={"pool_id": network.pools["b"].id, "beds": 1, "case_code": case_code, "expires_at": expires},
            headers=h("worker"),
        )
        assert hold.status_code == 201
        hold_id = hold.json()["id"]
        disbursement = await http.post(
            "/api/v1/disbursements",
            json={
                "fund_id": fund_id,
                "case_code": case_code,
                "category": "hotel",
                "amount_cents": 30_000,
                "currency": "CAD",
                "payee": "Hotel WS",
                "nights": 2,
            },
            headers=h("worker"),
        )
        assert disbursement.status_code == 201
        disbursement_id = disbursement.json()["id"]
        # Each socket gets the events in the order they were published: once a last pool change (which everyone
        # gets) has reached every socket, so has everything published before it that the socket may see.
        barrier = network.pools["a_family"].id
        last = await http.post(f"/api/v1/pools/{barrier}/adjust", json={"occupied_delta": 1}, headers=h("shelter_a"))
        assert last.status_code == 200

        async def barrier_everywhere() -> bool:
            return all(any(barrier in m for m in received[who]) for who in PEOPLE_USERS)

        assert await eventually(barrier_everywhere), {who: len(received[who]) for who in PEOPLE_USERS}
        if route == "/api/v1/stream":
            # The barrier moved shelter A's family pool (3 beds, none taken before): Montréal's family beds are 2.
            async def partner_saw_barrier() -> bool:
                return any(json.loads(m)["city"]["free"].get("family") == 2 for m in partner_received)

            assert await eventually(partner_saw_barrier), partner_received
            await partner_ws.close()
            await partner_task
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*tasks)

    # A case hold goes to the holder's organisation (community), coordinators and the facility's staff.
    hold_receivers = {"worker", "worker_plain", "dual", "approver_community", "coordinator", "shelter_b"}
    disbursement_receivers = {"worker", "approver", "approver_community", "dual"}
    for who in PEOPLE_USERS:
        text = "\n".join(received[who])
        assert network.pools["a"].id in text, f"{who} did not get the pool change on {route}"
        got_hold = hold_id in text
        got_disbursement = disbursement_id in text
        assert not got_hold or who in hold_receivers, f"{who} received a hold it is not party to on {route}"
        if route == "/api/v1/stream":
            assert got_hold == (who in hold_receivers), (who, route)
            assert got_disbursement == (who in disbursement_receivers), (who, route)
        else:
            assert not got_disbursement or who in disbursement_receivers, (who, route)
        # No address is ever published; the case code only to those who may see it.
        for secret in (network.facilities["a"].address, network.facilities["b"].address):
            assert secret not in text
        if case_code in text:
            assert who in {"worker", "worker_plain", "dual", "approver", "approver_community", "coordinator"}, (
                who,
                route,
            )
    # The partner learns each change's city and its free beds: no pool, facility, hold, case or disbursement.
    for message in partner_received:
        update = json.loads(message)
        assert update["type"] == "availability.updated"
        assert set(update["city"]) == {"province", "city", "free", "total_free"}
        for secret in (hold_id, disbursement_id, case_code, network.pools["a"].id, network.facilities["a"].id):
            assert secret not in message
        assert network.facilities["a"].name not in message and network.facilities["a"].address not in message
    if route == "/api/v1/stream":
        assert "Montréal" in {json.loads(m)["city"]["city"] for m in partner_received}
        for message in received["police"]:
            assert json.loads(message)["type"] == "pool.updated"
