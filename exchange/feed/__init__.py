"""The partner feed (issue 14): aggregated availability for partner systems (211 lines, provincial boards)."""
