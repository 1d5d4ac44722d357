"""The journal as a CSV download: one line per journal line, oldest entry first, with each entry's hash
and the previous entry's: an auditor's copy is a second anchor (the recipe is in ledger/chain.py)."""

from __future__ import annotations

import csv
import io

from litestar import Response

from ledger.journal import EntryView
from ledger.models import Fund

CSV_COLUMNS = [
    "entry_id",
    "seq",
    "posted_at",
    "kind",
    "memo",
    "account",
    "side",
    "amount_cents",
    "currency",
    "hash",
    "prev_hash",
    "disbursement_id",
]
# A cell starting with one of these would run as a formula in a spreadsheet.
FORMULA_STARTS = ("=", "+", "-", "@")


def journal_csv(views: list[EntryView], currency: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for view in sorted(views, key=lambda v: v.entry.seq):
        e = view.entry
        memo = "'" + e.memo if e.memo[:1] in FORMULA_STARTS else e.memo
        for line in view.lines:
            row = [e.id, e.seq, e.posted_at.isoformat(), e.kind, memo, line.account, line.side, line.amount_cents]
            writer.writerow([*row, currency, e.hash, e.prev_hash, e.disbursement_id or ""])
    return out.getvalue()


def journal_csv_response(fund: Fund, views: list[EntryView]) -> Response[str]:
    return Response(
        journal_csv(views, fund.currency),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="journal-{fund.id}.csv"'},
    )
