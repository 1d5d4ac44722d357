"""The answer at any hour: phones' push subscriptions, the approvers' roster, a facility's answering hours and
on-call contacts. Authorizes the actor and writes; exchange/oncall/api.py and pages.py call it, never the rows."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from beds.answering import Hours, answers_at, hours_from_json, hours_to_json
from beds.answering_models import FacilityAnswering
from beds.errors import Forbidden, Invalid, NotFound
from beds.models import Facility
from beds.timeutil import utcnow
from exchange.accounts.models import Role, User
from exchange.oncall.ladder import roster_night
from exchange.oncall.models import PushSubscription, RosterNight
from exchange.settings import Settings
from ledger.network_audit import record_network_event

ENDPOINT_LENGTH_MAX = 2048
# Nights ahead a roster may be set for.
ROSTER_NIGHTS_AHEAD = 60
CONTACTS_MAX = 5


def _key_bytes(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


# One label of a host name: letters, digits and inner hyphens (IP literals are digits and dots too).
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def endpoint_allowed(endpoint: str, services: tuple[str, ...]) -> bool:
    """True if the endpoint is at one of the push services (`scheme://host[:port]`, `*.` for any subdomain).

    The server posts to it, so the host must be the one the sender connects to: the URL is read by urllib3's
    parser too (what requests sends with), and anything two parsers could read differently is refused: a
    backslash, a percent sign, non-ASCII or a space in the host part, user info, a host that is not plain
    labels, a port the service does not name."""
    if not endpoint.isascii() or "\\" in endpoint or any(ch.isspace() or ord(ch) < 32 for ch in endpoint):
        return False
    try:
        parts = urlsplit(endpoint)
        port = parts.port
        sent = parse_url(endpoint)
    except (ValueError, LocationParseError):
        return False
    host = parts.hostname or ""
    if not host or "%" in parts.netloc or parts.username or parts.password or "@" in parts.netloc:
        return False
    if (sent.host or "").lower() != host or sent.port != port or (sent.scheme or "") != parts.scheme:
        return False
    if not all(_HOST_LABEL.match(label) for label in host.split(".")):
        return False
    for service in services:
        allowed = urlsplit(service)
        allowed_host = allowed.hostname or ""
        if parts.scheme != allowed.scheme or port != allowed.port:
            continue
        if host == allowed_host or (allowed_host.startswith("*.") and host.endswith(allowed_host[1:])):
            return True
    return False


def check_subscription(endpoint: str, p256dh: str, auth: str, services: tuple[str, ...]) -> None:
    """What a browser's `PushSubscription.toJSON()` gives: an endpoint at a known push service (the server posts
    to it: never an address of its own network), a P-256 point, a 16-byte secret."""
    if len(endpoint) > ENDPOINT_LENGTH_MAX or not endpoint_allowed(endpoint, services):
        raise Invalid("invalid_endpoint", "The subscription's endpoint is not at a known push service.")
    point = _key_bytes(p256dh)
    if point is None or len(point) != 65 or point[0] != 4:
        raise Invalid("invalid_key", "The subscription's p256dh key is not a P-256 public key.")
    secret = _key_bytes(auth)
    if secret is None or len(secret) != 16:
        raise Invalid("invalid_key", "The subscription's auth secret is not 16 bytes.")


class PushSubscriptions:
    """A user's own subscriptions; nobody sees or removes another person's."""

    def __init__(self, db: AsyncSession, user: User, settings: Settings) -> None:
        self.db = db
        self.user = user
        self.services = settings.push_services

    async def subscribe(self, endpoint: str, p256dh: str, auth: str) -> PushSubscription:
        check_subscription(endpoint, p256dh, auth, self.services)
        found = (
            await self.db.execute(select(PushSubscription).where(PushSubscription.endpoint == endpoint))
        ).scalar_one_or_none()
        if found is None:
            found = PushSubscription(user_id=self.user.id, endpoint=endpoint, p256dh=p256dh, auth=auth)
            self.db.add(found)
        else:
            # One browser, one endpoint: whoever logged in on it last gets its notifications.
            found.user_id, found.p256dh, found.auth, found.created_at = self.user.id, p256dh, auth, utcnow()
        await self.db.commit()
        return found

    async def mine(self) -> list[PushSubscription]:
        rows = await self.db.execute(
            select(PushSubscription)
            .where(PushSubscription.user_id == self.user.id)
            .order_by(PushSubscription.created_at.desc())  # type: ignore[attr-defined]
        )
        return list(rows.scalars().all())

    async def remove(self, subscription_id: str) -> None:
        gone = await self.db.execute(
            delete(PushSubscription).where(
                PushSubscription.id == subscription_id, PushSubscription.user_id == self.user.id
            )
        )
        await self.db.commit()
        if not gone.rowcount:  # type: ignore[attr-defined]
            raise NotFound("not_found", "No such subscription.")


@dataclass(frozen=True)
class RosterEntry:
    id: str
    night: date
    user_id: str
    name: str


class Roster:
    """The approvers on call per night, set by a fund approver or a network admin."""

    def __init__(self, db: AsyncSession, user: User, settings: Settings) -> None:
        self.db = db
        self.user = user
        self.zone = ZoneInfo(settings.roster_time_zone)
        if not user.has(Role.FUND_APPROVER, Role.NETWORK_ADMIN):
            raise Forbidden("forbidden", "Only fund approvers and network admins set the roster.")

    def tonight(self, now: datetime | None = None) -> date:
        return roster_night(now or utcnow(), self.zone)

    async def approvers(self) -> list[User]:
        rows = await self.db.execute(
            select(User).where(User.active.is_(True)).order_by(User.display_name)  # type: ignore[attr-defined]
        )
        return [u for u in rows.scalars().all() if u.has(Role.FUND_APPROVER)]

    async def entries(self, now: datetime | None = None) -> list[RosterEntry]:
        first = self.tonight(now)
        rows = await self.db.execute(
            select(RosterNight, User)
            .join(User, User.id == RosterNight.user_id)
            .where(RosterNight.night >= first, RosterNight.night <= first + timedelta(days=ROSTER_NIGHTS_AHEAD))
            .order_by(RosterNight.night, User.display_name)
        )
        return [RosterEntry(r.id, r.night, u.id, u.display_name or u.username) for r, u in rows.all()]

    async def add(self, night: date, approver_id: str, now: datetime | None = None) -> RosterNight:
        first = self.tonight(now)
        if not first <= night <= first + timedelta(days=ROSTER_NIGHTS_AHEAD):
            raise Invalid("night_out_of_range", "Choose a night from tonight to 60 nights ahead.")
        if approver_id not in {u.id for u in await self.approvers()}:
            raise Invalid("not_an_approver", "Choose one of the fund approvers.")
        exists = await self.db.execute(
            select(RosterNight.id).where(RosterNight.night == night, RosterNight.user_id == approver_id)
        )
        if exists.first() is not None:
            raise Invalid("already_on_roster", "This approver is already on call that night.")
        entry = RosterNight(night=night, user_id=approver_id, set_by=self.user.id)
        self.db.add(entry)
        await self.db.commit()
        return entry

    async def remove(self, entry_id: str) -> None:
        gone = await self.db.execute(delete(RosterNight).where(RosterNight.id == entry_id))
        await self.db.commit()
        if not gone.rowcount:  # type: ignore[attr-defined]
            raise NotFound("not_found", "No such roster entry.")


def check_contacts(lines: list[str]) -> list[str]:
    """Role addresses, in order: each an e-mail address, no repeats, at most CONTACTS_MAX."""
    contacts = []
    for line in lines:
        address = line.strip()
        if not address:
            continue
        local, _, domain = address.partition("@")
        if not local or "." not in domain or any(c.isspace() for c in address) or len(address) > 254:
            raise Invalid("invalid_contact", f"{address} is not an e-mail address.", field="contacts")
        if address.lower() not in (c.lower() for c in contacts):
            contacts.append(address)
    if len(contacts) > CONTACTS_MAX:
        raise Invalid("too_many_contacts", f"At most {CONTACTS_MAX} on-call addresses.", field="contacts")
    return contacts


class FacilityAnswer:
    """A facility's answering hours and on-call contacts, set by its own staff (or a network admin)."""

    def __init__(self, db: AsyncSession, user: User) -> None:
        self.db = db
        self.user = user

    async def facility(self, facility_id: str) -> Facility:
        facility = await self.db.get(Facility, facility_id)
        if facility is None or not facility.active:
            raise NotFound("not_found", "No such facility.")
        staffs = self.user.has(Role.SHELTER_STAFF) and self.user.organisation_id == facility.organisation_id
        if not (staffs or self.user.has(Role.NETWORK_ADMIN)):
            raise Forbidden("forbidden", "Only the facility's staff set when it answers.")
        return facility

    async def current(self, facility_id: str) -> tuple[Facility, FacilityAnswering | None]:
        facility = await self.facility(facility_id)
        return facility, await self.db.get(FacilityAnswering, facility_id)

    async def save(
        self, facility_id: str, round_the_clock: bool, hours: Hours, contacts: list[str], zone: ZoneInfo
    ) -> FacilityAnswering:
        facility = await self.facility(facility_id)
        contacts = check_contacts(contacts)
        if not round_the_clock and not hours:
            raise Invalid("no_hours", "Give the hours of at least one day, or tick round the clock.", field="hours")
        row = await self.db.get(FacilityAnswering, facility_id)
        if row is None:
            row = FacilityAnswering(facility_id=facility_id)
            self.db.add(row)
        # Where a safe house's requests and escalations are mailed is a target (an admin account phished could send
        # them elsewhere): every change of it goes into the network audit, in the same transaction.
        contacts_changed = list(row.contacts or []) != contacts
        row.round_the_clock = round_the_clock
        row.hours = hours_to_json(hours)
        row.contacts = contacts
        if contacts:
            # The first contact is who each new request is mailed to (exchange/holds/mail.py reads this field).
            facility.oncall_email = contacts[0]
        row.time_zone = zone.key
        row.updated_by = self.user.id
        row.updated_at = utcnow()
        if contacts_changed:
            own_staff = self.user.has(Role.SHELTER_STAFF) and self.user.organisation_id == facility.organisation_id
            detail = {"facility": facility_id, "contacts": contacts, "by_own_staff": own_staff}
            await record_network_event(self.db, "facility_contacts_changed", self.user.id, detail)  # commits
        else:
            await self.db.commit()
        return row

    @staticmethod
    def answers_now(row: FacilityAnswering | None, now: datetime | None = None) -> bool | None:
        if row is None:
            return None
        return answers_at(row.round_the_clock, hours_from_json(row.hours), now or utcnow(), ZoneInfo(row.time_zone))
