"""The JSON integration API (API.md)."""
