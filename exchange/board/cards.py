"""Rendered facility cards, kept per process and reused while nothing they show has changed.

A full board is thousands of cards and most of them do not change between two renders. The key is
everything a card shows (the facility row, its pool rows with their versions, the language, the
"updated ... ago" text, whether the viewer may edit, and that viewer's CSRF field when the card has
forms), so a cached card can never be out of date or carry another user's token.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from beds.board import FacilityListing
from exchange.web import i18n

TEMPLATE = "fragments/facility_card.html"


class FacilityCards:
    def __init__(self, max_entries: int = 20_000) -> None:
        self.max_entries = max_entries
        self._cache: dict[tuple[Any, ...], Markup] = {}

    def render(
        self,
        env: Environment,
        listings: Iterable[FacilityListing],
        *,
        editable: frozenset[str],
        now: datetime,
        csrf_input: str,
    ) -> dict[str, Markup]:
        template = env.get_template(TEMPLATE)
        locale = i18n.get_locale()
        cards: dict[str, Markup] = {}
        for listing in listings:
            facility = listing.facility
            can_edit = facility.id in editable
            key = (
                tuple(facility),
                tuple(tuple(pool) for pool in listing.pools),
                locale,
                listing.stale,
                i18n.format_ago(facility.updated_at, now),
                can_edit,
                csrf_input if can_edit else "",
            )
            html = self._cache.get(key)
            if html is None:
                html = Markup(template.render(li=listing, now=now, can_edit=can_edit, csrf_input=Markup(csrf_input)))
                if len(self._cache) >= self.max_entries:
                    self._cache.clear()
                self._cache[key] = html
            cards[facility.id] = html
        return cards
