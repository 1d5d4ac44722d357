"""The journal as a CSV download: one line per journal line, oldest entry first, with each entry's hash
and the previous entry's: an auditor's copy is a second anchor (the recipe is in ledger/chain.py)."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from datetime import date

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
    "amount",
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
            cents = line.amount_cents
            row = [e.id, e.seq, e.posted_at.isoformat(), e.kind, memo, line.account, line.side, cents, dollars(cents)]
            writer.writerow([*row, currency, e.hash, e.prev_hash, e.disbursement_id or ""])
    return out.getvalue()


def dollars(cents: int) -> str:
    """Cents as dollars for a spreadsheet ("1234.05"), by integer arithmetic: never through a float."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def csv_file_name(fund: Fund, start: str = "", end: str = "", today: date | None = None) -> str:
    """`journal-<fund>-<from>-to-<to>.csv`: a downloaded file says which fund and period it holds."""
    slug = re.sub(
        r"[^a-z0-9]+", "-", unicodedata.normalize("NFKD", fund.name).encode("ascii", "ignore").decode().lower()
    )
    slug = slug.strip("-") or fund.id
    period_start = start or "start"
    period_end = end or (today or date.today()).isoformat()
    return f"journal-{slug}-{period_start}-to-{period_end}.csv"


def journal_csv_response(fund: Fund, views: list[EntryView], start: str = "", end: str = "") -> Response[str]:
    """`start` and `end` as typed in the filter (dates or ISO moments), for the file's name."""
    name = csv_file_name(fund, _safe(start), _safe(end))
    return Response(
        journal_csv(views, fund.currency),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _safe(typed: str) -> str:
    """A filter value as it may appear in a file name (an ISO moment's colons and plus become dashes)."""
    return re.sub(r"[^0-9A-Za-z-]+", "-", typed)[:40].strip("-")
