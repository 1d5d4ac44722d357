"""Imports every table so one metadata holds the whole schema (Alembic, tests, `refuge db upgrade`)."""

from __future__ import annotations

from sqlmodel import SQLModel

import beds.answering_models  # answering hours and on-call contacts
import beds.audit  # confidential address releases
import beds.directory_models  # HSDS directory links and published addresses
import beds.holds_models  # operations, holds, standing agreements
import beds.models  # facilities, pools, pool history, surge beds
import beds.placements_models  # placements (stays) and their follow-up dates
import exchange.accounts.models  # organisations, users, API tokens
import exchange.oncall.models  # push subscriptions, approvers' roster, escalation steps
import ledger.anchor_models  # signed checkpoints, the network audit chain (admin actions)
import ledger.models  # funds, journal, balances, disbursements, approvals, rules, audit events
import ledger.stripe_models  # cards, authorizations, card transactions, donations, Stripe events

metadata = SQLModel.metadata
__all__ = ["beds", "exchange", "ledger", "metadata"]
