"""The bodies the placements' API and pages read. Unknown body fields are refused (API)."""

from __future__ import annotations

from msgspec import Struct

from exchange.web.schemas import Body


class ExpectedEndRequest(Body):
    """`{"expected_end": "2026-12-20T12:00:00-05:00"}`, or null when it is not known any more."""

    expected_end: str | None


class EndForm(Struct):
    """A Departure that ends one stay (the row it was tapped on comes back), or the placements page's End."""

    next: str = ""


class ExpectedEndForm(Struct):
    """The expected end as the page's date field gives it (`YYYY-MM-DD`, in the facility's zone); empty: unknown."""

    expected_end: str = ""
    next: str = ""
