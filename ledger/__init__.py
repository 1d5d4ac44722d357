"""The emergency fund: cases, double-entry journal, disbursements, approval rules, audit chains.

A plain domain package: it never imports `exchange` or `beds`.
"""
