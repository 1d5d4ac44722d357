"""Bed inventory domain: facilities, bed pools, eligibility, holds, operations, placements, allocation.

Plain domain code: it never imports `exchange` or `ledger`.
"""
