"""The escalation ladder as pure rules: which step of a waiting request is due when, and who it reaches.
No session, no I/O: exchange/oncall/sweep.py reads the rows, asks these functions, and claims each due step."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

# A roster night runs from noon of its date to noon the next day, in the roster's zone.
NIGHT_TURNS_AT_HOUR = 12
# A fund request's ladder: tonight's roster, then every approver.
FUND_LAST_STEP = 2


@dataclass(frozen=True)
class Rung:
    """One step: its number (from 1, the order they are taken in), when it is due, and who it reaches:
    `addresses` (role addresses, e-mail only) or `audience` ("shelter_staff", "roster", "approvers",
    "coordinators": people, by e-mail and Web Push)."""

    step: int
    due_at: datetime
    audience: str
    addresses: tuple[str, ...] = ()


def roster_night(at: datetime, zone: ZoneInfo) -> date:
    local = at.astimezone(zone)
    return (local - timedelta(hours=NIGHT_TURNS_AT_HOUR)).date()


def fund_ladder(created_at: datetime, all_approvers_after: timedelta) -> list[Rung]:
    """A fund request waiting for approval: the approvers on call tonight at once, then every approver."""
    return [Rung(1, created_at, "roster"), Rung(FUND_LAST_STEP, created_at + all_approvers_after, "approvers")]


def hold_ladder(respond_by: datetime, contacts: list[str], gap: timedelta) -> list[Rung]:
    """An unanswered hold request. The first contact had the request itself (exchange/holds/mail.py); at the
    response window the next one is asked, then each further one `gap` later, and the coordinators last. The
    facility's staff have every contact's step on their phones too."""
    rungs = [
        Rung(index, respond_by + gap * (index - 1), "shelter_staff", (address,))
        for index, address in enumerate(contacts[1:], start=1)
    ]
    rungs.append(Rung(len(rungs) + 1, respond_by + gap * len(rungs), "coordinators"))
    return rungs


def due(rungs: list[Rung], now: datetime) -> list[Rung]:
    """The steps due by `now`, in order; a step is due only once every earlier one is."""
    taken = []
    for rung in rungs:
        if rung.due_at > now:
            break
        taken.append(rung)
    return taken
