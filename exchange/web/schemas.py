"""The base of every JSON API body: a body with a field the API does not know is refused, not ignored."""

from __future__ import annotations

import msgspec


class Body(msgspec.Struct, forbid_unknown_fields=True):
    pass
