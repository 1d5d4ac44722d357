"""The escalation ladder: a fund request waiting for approval goes to tonight's approvers on call, then to every
approver; an unanswered hold request goes to the facility's next on-call contacts, then to the coordinators.
Each step notifies once, in order, across restarts and concurrent sweepers: e-mail through a real local SMTP
server, Web Push through the tests' own push service (tests/push_service.py), which checks the VAPID signature
and decrypts the payload with the subscription's keys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from beds.answering_models import FacilityAnswering
from beds.holds_models import Hold
from exchange.accounts.models import User
from exchange.app import create_app
from exchange.db import make_engine, make_sessionmaker
from exchange.oncall.ladder import roster_night
from exchange.oncall.models import EscalationStep, PushSubscription, RosterNight
from exchange.oncall.service import endpoint_allowed
from exchange.oncall.sweep import escalate
from exchange.settings import Settings
from ledger.cases import create_case
from tests.conftest import Network, eventually, free_port
from tests.push_service import PushService, vapid_keys
from tests.test_browser import fixture_funded  # noqa: F401  (fixture)
from tests.test_notifications import Inbox, _operation_hold

# The French of "1 request waiting, open the app" (exchange/web/locale/fr/LC_MESSAGES/oncall.po).
FRENCH_WAITING = "1 demande en attente, ouvrez l\u2019application"
EMAILS = {
    "approver": "approver@coalition.test",
    "approver_community": "approver@community.test",
    "dual": "dual@community.test",
    "coordinator": "coordinator@coalition.test",
    "shelter_a": "staff@alpha.test",
}


@dataclass
class Channels:
    settings: Settings
    smtp: Inbox
    push: PushService

    def mails(self) -> list[tuple[str, Message]]:
        return [(to, message_from_bytes(raw)) for tos, raw in self.smtp.messages for to in tos]

    def mail_to(self, address: str) -> list[Message]:
        return [m for to, m in self.mails() if to == address]


@pytest.fixture(name="channels")
def fixture_channels(settings: Settings) -> Iterator[Channels]:
    public, private = vapid_keys()
    inbox = Inbox()
    port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        with PushService(public) as push:
            configured = replace(
                settings,
                smtp_host="127.0.0.1",
                smtp_port=port,
                vapid_public_key=public,
                vapid_private_key=private,
                vapid_subject="mailto:ops@refuge.test",
                push_services=(push.url,),
                # The tests take each step at a time of their choosing: this app's own sweeper stays asleep.
                sweep_interval_seconds=3600,
            )
            yield Channels(configured, inbox, push)
    finally:
        smtp.stop()


@pytest.fixture(name="push_client")
async def fixture_push_client(channels: Channels) -> AsyncIterator[AsyncTestClient]:
    """A client on an app that knows the tests' push service (its endpoints are accepted) and the SMTP server."""
    async with AsyncTestClient(app=create_app(channels.settings), base_url="http://testserver.local") as client:
        yield client


@pytest.fixture(name="people")
async def fixture_people(sessionmaker: async_sessionmaker, network: Network) -> Network:
    """The network's approvers, coordinator and shelter staff with e-mail addresses; one approver reads French."""
    async with sessionmaker() as session:
        for username, email in EMAILS.items():
            await session.execute(update(User).where(User.id == network[username].id).values(email=email))
        await session.execute(update(User).where(User.id == network["approver_community"].id).values(locale="fr"))
        await session.commit()
    return network


async def _subscribe(client: AsyncTestClient, push: PushService, person: Any) -> str:
    """A phone of `person` subscribes through the API; the push service's token for it."""
    sub = push.subscription()
    answer = await client.post("/api/v1/push/subscriptions", json=sub, headers=person.headers)
    assert answer.status_code == 201, answer.text
    return push.token_of(sub)


async def _hotel_request(
    client: AsyncTestClient, sessionmaker: async_sessionmaker, network: Network, fund: str
) -> dict:
    async with sessionmaker() as session:
        case = await create_case(
            session, lead_org_id=network["worker"].user.organisation_id, created_by_user_id=network["worker"].id
        )
    answer = await client.post(
        "/api/v1/disbursements",
        json={
            "fund_id": fund,
            "case_code": case.code,
            "category": "hotel",
            "amount_cents": 36_000,
            "currency": "CAD",
            "payee": "Hôtel Gare Centrale",
            "nights": 2,
        },
        headers=network["worker"].headers,
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["status"] == "pending_approval"
    return body


async def _put_on_roster(sessionmaker: async_sessionmaker, settings: Settings, network: Network, at: datetime) -> None:
    async with sessionmaker() as session:
        night = roster_night(at, ZoneInfo(settings.roster_time_zone))
        session.add(RosterNight(night=night, user_id=network["approver"].id, set_by=network["admin"].id))
        await session.commit()


async def _steps(sessionmaker: async_sessionmaker) -> list[tuple[str, int]]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(EscalationStep.kind, EscalationStep.step).order_by(EscalationStep.done_at, EscalationStep.step)
        )
        return [(kind, step) for kind, step in rows.all()]


def _created(body: dict) -> datetime:
    return datetime.fromisoformat(body["created_at"]) if "created_at" in body else datetime.now(UTC)


def _assert_says_only_that_a_request_waits(payload: dict, secrets_: list[str], lang: str = "en") -> None:
    waiting = "1 request waiting, open the app" if lang == "en" else FRENCH_WAITING
    assert payload == {"title": "Refuge Exchange", "body": waiting, "url": payload["url"]}
    text = str(payload)
    for secret in secrets_:
        assert secret not in text


async def test_a_fund_request_goes_to_the_roster_then_every_approver_once_each_in_order(
    push_client: AsyncTestClient, sessionmaker: async_sessionmaker, people: Network, funded: str, channels: Channels
) -> None:
    push = channels.push
    approver_phone = await _subscribe(push_client, push, people["approver"])
    french_phone = await _subscribe(push_client, push, people["approver_community"])
    worker_phone = await _subscribe(push_client, push, people["worker"])
    start = datetime.now(UTC)
    await _put_on_roster(sessionmaker, channels.settings, people, start)
    request = await _hotel_request(push_client, sessionmaker, people, funded)
    case_code, secrets_ = request["case_code"], ["Hôtel", "360", request["case_code"], request["id"]]

    first = await escalate(sessionmaker, channels.settings, now=start + timedelta(seconds=5))
    assert [(t.kind, t.step, t.people) for t in first] == [("disbursement", 1, 1)]
    assert [to for to, _ in channels.mails()] == [EMAILS["approver"]]
    assert len(push.for_token(approver_phone)) == 1 and not push.for_token(french_phone), push.refused
    received = push.for_token(approver_phone)[0]
    _assert_says_only_that_a_request_waits(received.payload, secrets_)
    assert received.payload["url"] == "/ledger/inbox"
    assert received.claims["sub"] == "mailto:ops@refuge.test" and received.ttl > 0
    mail = channels.mail_to(EMAILS["approver"])[0]
    mail_text = mail["Subject"] + mail.get_payload(decode=True).decode()
    assert "1 request waiting" in mail_text and "http://testserver.local/ledger/inbox" in mail_text
    assert case_code not in mail_text and "Hôtel" not in mail_text and "360" not in mail_text

    # The same sweep again, and a "restarted" process (its own engine) a minute later: nothing new.
    assert await escalate(sessionmaker, channels.settings, now=start + timedelta(seconds=6)) == []
    engine = make_engine(channels.settings.database_url)
    try:
        restarted = make_sessionmaker(engine)
        assert await escalate(restarted, channels.settings, now=start + timedelta(minutes=1)) == []
        # After the set time, every approver (the requester is none of them) once.
        later = start + timedelta(minutes=channels.settings.escalation_all_approvers_minutes, seconds=10)
        second = await escalate(restarted, channels.settings, now=later)
        assert [(t.step, t.people) for t in second] == [(2, 3)]
        assert await escalate(restarted, channels.settings, now=later + timedelta(hours=3)) == []
    finally:
        await engine.dispose()
    assert sorted(to for to, _ in channels.mails()) == sorted(
        [EMAILS["approver"], EMAILS["approver"], EMAILS["approver_community"], EMAILS["dual"]]
    )
    assert len(push.for_token(approver_phone)) == 2
    assert [r.payload["body"] for r in push.for_token(french_phone)] == [FRENCH_WAITING]
    assert push.for_token(worker_phone) == [] and push.refused == []
    assert await _steps(sessionmaker) == [("disbursement", 1), ("disbursement", 2)]


async def test_a_decided_request_climbs_no_further(
    push_client: AsyncTestClient, sessionmaker: async_sessionmaker, people: Network, funded: str, channels: Channels
) -> None:
    start = datetime.now(UTC)
    request = await _hotel_request(push_client, sessionmaker, people, funded)
    # Nobody on the roster tonight: the first step goes to every approver at once.
    first = await escalate(sessionmaker, channels.settings, now=start + timedelta(seconds=5))
    assert [(t.step, t.people) for t in first] == [(1, 3)]
    approved = await push_client.post(
        f"/api/v1/disbursements/{request['id']}/approve", headers=people["approver"].headers
    )
    assert approved.status_code == 200, approved.text
    assert await escalate(sessionmaker, channels.settings, now=start + timedelta(hours=2)) == []
    assert len(channels.smtp.messages) == 3


async def test_concurrent_sweepers_notify_each_step_once(
    push_client: AsyncTestClient, sessionmaker: async_sessionmaker, people: Network, funded: str, channels: Channels
) -> None:
    phone = await _subscribe(push_client, channels.push, people["approver"])
    start = datetime.now(UTC)
    await _put_on_roster(sessionmaker, channels.settings, people, start)
    await _hotel_request(push_client, sessionmaker, people, funded)
    await _hotel_request(push_client, sessionmaker, people, funded)
    engines = [make_engine(channels.settings.database_url) for _ in range(2)]
    try:
        makers = [make_sessionmaker(engine) for engine in engines]
        for at in (start + timedelta(seconds=5), start + timedelta(hours=1)):
            # Two processes' sweeps at the same moment, each on its own connections, four rounds each.
            rounds = await asyncio.gather(
                *(escalate(maker, channels.settings, now=at) for maker in makers for _ in range(4))
            )
            assert sum(len(taken) for taken in rounds) == 2  # one step for each of the two requests
    finally:
        for engine in engines:
            await engine.dispose()
    assert sorted(await _steps(sessionmaker)) == [("disbursement", 1)] * 2 + [("disbursement", 2)] * 2
    # Each request: step 1 to the one approver on call, step 2 to all three approvers.
    assert len(channels.mail_to(EMAILS["approver"])) == 4
    assert len(channels.mail_to(EMAILS["approver_community"])) == 2
    assert len(channels.push.for_token(phone)) == 4


async def test_an_unanswered_hold_goes_down_the_contacts_then_to_the_coordinators(
    push_client: AsyncTestClient, sessionmaker: async_sessionmaker, people: Network, channels: Channels
) -> None:
    staff_phone = await _subscribe(push_client, channels.push, people["shelter_a"])
    coordinator_phone = await _subscribe(push_client, channels.push, people["coordinator"])
    # The facility's first on-call address gets the request itself (exchange/holds/mail.py); the ladder the rest.
    contacts = ["alpha@shelter.test", "backup@alpha.test", "director@alpha.test"]
    async with sessionmaker() as session:
        session.add(FacilityAnswering(facility_id=people.facilities["a"].id, round_the_clock=True, contacts=contacts))
        await session.commit()
    hold = await _operation_hold(push_client, people)  # police asks shelter A for 2 beds

    async def request_mailed() -> bool:
        return bool(channels.mail_to("alpha@shelter.test"))

    assert await eventually(request_mailed)
    async with sessionmaker() as session:
        respond_by = (await session.get(Hold, hold["id"])).respond_by
    settings = channels.settings
    gap = timedelta(minutes=settings.escalation_contact_minutes)

    def ladder_mails() -> list[tuple[str, Message]]:
        return [(to, m) for to, m in channels.mails() if to != "alpha@shelter.test"]

    assert await escalate(sessionmaker, settings, now=respond_by - timedelta(seconds=1)) == []
    at_window = await escalate(sessionmaker, settings, now=respond_by)
    assert [(t.kind, t.step, t.addresses) for t in at_window] == [("hold", 1, 1)]
    assert [to for to, _ in ladder_mails()] == ["backup@alpha.test"]
    assert len(channels.push.for_token(staff_phone)) == 1
    assert await escalate(sessionmaker, settings, now=respond_by + gap - timedelta(seconds=1)) == []
    # Both later steps due in one sweep (a sweeper that was down): taken in order, each once.
    late = await escalate(sessionmaker, settings, now=respond_by + 2 * gap)
    assert [t.step for t in late] == [2, 3]
    assert await escalate(sessionmaker, settings, now=respond_by + 2 * gap) == []
    assert [to for to, _ in ladder_mails()] == ["backup@alpha.test", "director@alpha.test", EMAILS["coordinator"]]
    assert len(channels.mail_to("alpha@shelter.test")) == 1
    assert len(channels.push.for_token(staff_phone)) == 2
    coordinator_push = channels.push.for_token(coordinator_phone)
    assert len(coordinator_push) == 1
    secrets_ = ["NIGHTJAR", "123 rue Secrète", "+1-555-000-1111", "police org", hold["id"]]
    _assert_says_only_that_a_request_waits(coordinator_push[0].payload, secrets_)
    assert coordinator_push[0].payload["url"] == "/home"
    assert [r.payload["url"] for r in channels.push.for_token(staff_phone)] == ["/requests", "/requests"]
    for _, message in ladder_mails():
        text = message["Subject"] + message.get_payload(decode=True).decode()
        assert ("1 request waiting" in text and "1 demande en attente" in text) or "coordinator" in message["To"]
        for secret in secrets_:
            assert secret not in text
    assert await _steps(sessionmaker) == [("hold", 1), ("hold", 2), ("hold", 3)]


async def test_a_gone_subscription_is_dropped_and_the_others_still_get_theirs(
    push_client: AsyncTestClient, sessionmaker: async_sessionmaker, people: Network, funded: str, channels: Channels
) -> None:
    lost = await _subscribe(push_client, channels.push, people["approver"])
    kept = await _subscribe(push_client, channels.push, people["approver"])
    channels.push.gone.add(lost)
    await _hotel_request(push_client, sessionmaker, people, funded)
    await escalate(sessionmaker, channels.settings, now=datetime.now(UTC) + timedelta(seconds=5))
    assert len(channels.push.for_token(kept)) == 1
    async with sessionmaker() as session:
        endpoints = (await session.execute(select(PushSubscription.endpoint))).scalars().all()
    assert [e.rsplit("/", 1)[1] for e in endpoints] == [kept]


async def test_subscriptions_are_checked_and_each_persons_own(
    client: AsyncTestClient, push_client: AsyncTestClient, people: Network, channels: Channels
) -> None:
    good = channels.push.subscription()
    # An app with the default settings knows only the browsers' push services, not the tests' own.
    elsewhere = await client.post("/api/v1/push/subscriptions", json=good, headers=people["approver"].headers)
    assert elsewhere.status_code == 422 and elsewhere.json()["error"] == "invalid_endpoint"
    assert endpoint_allowed("https://web.push.apple.com/QGuG1X", Settings().push_services)
    assert endpoint_allowed("https://fcm.googleapis.com/fcm/send/dK9", Settings().push_services)
    assert not endpoint_allowed("http://fcm.googleapis.com/fcm/send/dK9", Settings().push_services)
    bad_key = {**good, "keys": {**good["keys"], "p256dh": "AAAA"}}
    refused = await push_client.post("/api/v1/push/subscriptions", json=bad_key, headers=people["approver"].headers)
    assert refused.status_code == 422 and refused.json()["error"] == "invalid_key"
    # The server posts to the endpoint: only the push services of the settings, never its own network.
    for endpoint in (
        "javascript:alert(1)",
        "http://127.0.0.1:5432/",
        "http://169.254.169.254/latest/meta-data",
        f"{channels.push.url}@internal.test/push/x",
        "https://web.push.apple.com.evil.test/x",
        # Read as a push.apple.com host by one parser, as 127.0.0.1 by the one requests sends with.
        "https://127.0.0.1\\.push.apple.com/x",
        "https://127.0.0.1\uff1a443.push.apple.com/x",
        "https://fcm.googleapis.com%2f@127.0.0.1/x",
        # A push service's host, another port.
        "https://fcm.googleapis.com:8443/x",
        "https://a.push.apple.com:22/x",
    ):
        refused = await push_client.post(
            "/api/v1/push/subscriptions", json={**good, "endpoint": endpoint}, headers=people["approver"].headers
        )
        assert refused.status_code == 422 and refused.json()["error"] == "invalid_endpoint", endpoint
    made = await push_client.post(
        "/api/v1/push/subscriptions", json={**good, "expirationTime": None}, headers=people["approver"].headers
    )
    assert made.status_code == 201
    sub_id = made.json()["id"]
    mine = await push_client.get("/api/v1/push/subscriptions", headers=people["approver"].headers)
    assert [s["id"] for s in mine.json()] == [sub_id]
    theirs = await push_client.get("/api/v1/push/subscriptions", headers=people["worker"].headers)
    assert theirs.json() == []
    stolen = await push_client.delete(f"/api/v1/push/subscriptions/{sub_id}", headers=people["worker"].headers)
    assert stolen.status_code == 404
    removed = await push_client.delete(f"/api/v1/push/subscriptions/{sub_id}", headers=people["approver"].headers)
    assert removed.status_code == 204
    again = await push_client.get("/api/v1/push/subscriptions", headers=people["approver"].headers)
    assert again.json() == []


def test_a_roster_night_runs_from_noon_to_noon_on_the_rosters_clock() -> None:
    zone = ZoneInfo("America/Toronto")
    three_am = datetime(2026, 12, 2, 3, 0, tzinfo=zone)
    assert roster_night(three_am, zone).isoformat() == "2026-12-01"  # 3 a.m. belongs to the night before
    assert roster_night(three_am.replace(hour=13), zone).isoformat() == "2026-12-02"
    assert roster_night(three_am.replace(hour=11, minute=59), zone).isoformat() == "2026-12-01"
