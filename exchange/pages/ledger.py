"""Emergency fund pages (htmx): request form, approver inbox, status, journal, report, rule editor."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Redirect


class LedgerPages(Controller):
    path = "/ledger"

    @get("/")
    async def index(self) -> Redirect:
        return Redirect(path="/")
