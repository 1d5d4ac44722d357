"""Whether an operation is covered: per needed group, how many beds are needed, requested, confirmed,
claimed and declined, from the operation's holds; and where the operation stands in its window.

Pure (no session, no I/O): the service reads the needs and holds and asks here, so the page, the API and
the operations list say the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from beds.holds_models import Hold, HoldStatus, Operation, OperationNeed


class OperationStatus(StrEnum):
    PLANNED = "planned"  # its window has not started
    ACTIVE = "active"  # within its window
    ENDED = "ended"  # its window is over


def operation_status(operation: Operation, now: datetime) -> OperationStatus:
    if now < operation.window_start:
        return OperationStatus.PLANNED
    if now < operation.window_end:
        return OperationStatus.ACTIVE
    return OperationStatus.ENDED


@dataclass
class GroupCoverage:
    """One needed group (a bed profile of the operation's needs). `profile` is None for the operation's holds
    that cover no listed need (a hold placed by hand for the operation)."""

    profile: str | None
    needed: int = 0
    requested: int = 0  # waiting for the shelter's answer
    confirmed: int = 0
    claimed: int = 0
    declined: int = 0
    released: int = 0
    expired: int = 0

    @property
    def held(self) -> int:
        """Beds that count toward the need: asked and not refused, released or lapsed."""
        return self.requested + self.confirmed + self.claimed

    @property
    def secured(self) -> int:
        """Beds a shelter has said yes to (a claimed hold was confirmed first)."""
        return self.confirmed + self.claimed

    @property
    def missing(self) -> int:
        """Beds still to find: what no hold covers, a declined or lapsed one included."""
        return max(0, self.needed - self.held)


_COUNTED = {
    HoldStatus.REQUESTED.value: "requested",
    HoldStatus.CONFIRMED.value: "confirmed",
    HoldStatus.CLAIMED.value: "claimed",
    HoldStatus.DECLINED.value: "declined",
    HoldStatus.RELEASED.value: "released",
    HoldStatus.EXPIRED.value: "expired",
}


@dataclass
class Coverage:
    groups: list[GroupCoverage] = field(default_factory=list)

    def _total(self, name: str) -> int:
        return sum(getattr(g, name) for g in self.groups)

    @property
    def needed(self) -> int:
        return self._total("needed")

    @property
    def requested(self) -> int:
        return self._total("requested")

    @property
    def confirmed(self) -> int:
        return self._total("confirmed")

    @property
    def claimed(self) -> int:
        return self._total("claimed")

    @property
    def declined(self) -> int:
        return self._total("declined")

    @property
    def secured(self) -> int:
        return self._total("secured")

    @property
    def missing(self) -> int:
        return self._total("missing")

    @property
    def covered(self) -> bool:
        """Every need has a hold (asked, confirmed or claimed) for each of its beds."""
        return self.missing == 0


def coverage(needs: Iterable[OperationNeed], holds: Iterable[Hold], now: datetime) -> Coverage:
    """Per needed group, in the order of the needs. A hold still `requested` or `confirmed` whose expiry has
    passed counts as expired: the page says what is true even before the sweeper has run."""
    groups: dict[str | None, GroupCoverage] = {}
    for need in needs:
        groups[need.profile] = GroupCoverage(need.profile, needed=need.count)
    for hold in holds:
        status = hold.status
        if hold.is_active and hold.expires_at <= now:
            status = HoldStatus.EXPIRED.value
        name = _COUNTED.get(status)
        if name is None:
            continue
        key = hold.need_profile if hold.need_profile in groups else None
        group = groups.setdefault(key, GroupCoverage(key))
        setattr(group, name, getattr(group, name) + hold.beds)
    return Coverage(list(groups.values()))
