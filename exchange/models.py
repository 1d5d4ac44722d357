"""Imports every table so one metadata holds the whole schema (Alembic, tests, `refuge db upgrade`)."""

from __future__ import annotations

from sqlmodel import SQLModel

import beds.audit
import beds.models
import exchange.accounts

metadata = SQLModel.metadata
__all__ = ["beds", "exchange", "metadata"]

import ledger.models  # noqa: E402  (emergency fund: journal, disbursements, rules, audit)


import beds.holds_models  # noqa: E402  (operations, holds, standing agreements)
import ledger.stripe_models  # noqa: E402, F401  (cards, authorizations, card transactions, donations, Stripe events)
