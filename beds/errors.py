"""Errors of the beds domain. `kind` tells the web shell which status to answer with."""

from __future__ import annotations

from typing import Any


class BedsError(Exception):
    kind = "invalid"  # invalid | not_found | forbidden | conflict

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.extra = extra


class NotFound(BedsError):
    kind = "not_found"


class Forbidden(BedsError):
    kind = "forbidden"


class Conflict(BedsError):
    kind = "conflict"


class Invalid(BedsError):
    kind = "invalid"
