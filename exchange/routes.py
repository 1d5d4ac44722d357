"""Every route of the app, in one list, so the access matrix test can walk them all."""

from __future__ import annotations

from typing import Any


def route_handlers() -> list[Any]:
    from exchange.api.auth import TokenController
    from exchange.api.beds import FacilityController, PoolController
    from exchange.api.holds import AgreementController, HoldController, OperationController
    from exchange.api.ledger import CaseController, DisbursementController, FundController
    from exchange.api.stripe import StripeCardController, fund_reconciliation, stripe_webhook
    from exchange.pages.admin import AdminPages
    from exchange.pages.auth import AuthPages
    from exchange.pages.board import BoardPages
    from exchange.pages.facility import FacilityPages
    from exchange.pages.holds import HoldPages
    from exchange.pages.ledger import LedgerPages
    from exchange.pages.reports import ReportPages
    from exchange.pages.stripe import DonationPages, StripePages
    from exchange.stream import board_stream, json_stream

    return [
        TokenController,
        FacilityController,
        PoolController,
        json_stream,
        AuthPages,
        BoardPages,
        FacilityPages,
        board_stream,
        AdminPages,
        CaseController,
        FundController,
        DisbursementController,
        LedgerPages,
        OperationController,
        HoldController,
        AgreementController,
        HoldPages,
        ReportPages,
        stripe_webhook,
        StripeCardController,
        fund_reconciliation,
        StripePages,
        DonationPages,
    ]
