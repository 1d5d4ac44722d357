"""Errors of the ledger domain. `kind` tells the web shell which status to answer with."""

from __future__ import annotations

from typing import Any


class LedgerError(Exception):
    kind = "invalid"  # invalid | not_found | forbidden | conflict | bad_request

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.extra = extra


class NotFound(LedgerError):
    kind = "not_found"


class Forbidden(LedgerError):
    kind = "forbidden"


class Conflict(LedgerError):
    kind = "conflict"


class Invalid(LedgerError):
    kind = "invalid"
