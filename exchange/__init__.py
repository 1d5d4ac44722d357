"""Refuge Exchange web shell: app factory, settings, auth, pages, JSON API, websockets and CLI."""
