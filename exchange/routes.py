"""Every route of the app, in one list, so the access matrix test can walk them all."""

from __future__ import annotations

from typing import Any


def route_handlers() -> list[Any]:
    from exchange.accounts.api import TokenController
    from exchange.accounts.pages import AuthPages
    from exchange.admin.pages import AdminPages
    from exchange.board.api import FacilityController, PoolController
    from exchange.board.facility_pages import FacilityPages
    from exchange.board.pages import BoardPages
    from exchange.board.report_pages import ReportPages
    from exchange.fund.api import CaseController, DisbursementController, FundController
    from exchange.fund.pages import LedgerPages
    from exchange.holds.api import AgreementController, HoldController, OperationController
    from exchange.holds.pages import HoldPages
    from exchange.live.sockets import board_stream, json_stream
    from exchange.stripe.api import StripeCardController, fund_reconciliation, stripe_webhook
    from exchange.stripe.pages import DonationPages, StripePages

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
