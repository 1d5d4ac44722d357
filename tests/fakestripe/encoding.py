"""Stripe's v1 form encoding, decoded back into nested dicts and lists.

The SDK (``stripe._encode._api_encode`` + ``urlencode``, brackets left unescaped) sends
``spending_controls[spending_limits][0][amount]=5000``, ``metadata[disbursement_id]=d1``,
``expand[0]=number`` and booleans as ``true``/``false``. Every value arrives as a string; the endpoints
coerce what they need. ``a[]=x`` (the older array form, still accepted by Stripe) appends.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


class EncodingError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"Invalid parameter name: {key}")
        self.key = key


class _Appending(dict[str, Any]):
    """A node built from ``a[]=`` keys: keys are assigned in arrival order."""


def decode_form(body: str) -> dict[str, Any]:
    """Decode an ``application/x-www-form-urlencoded`` string (body or query) into nested dicts/lists."""
    return decode_pairs(parse_qsl(body, keep_blank_values=True))


def decode_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        match = _KEY.match(raw_key)
        if match is None:
            raise EncodingError(raw_key)
        path = [match.group(1), *_SEGMENT.findall(match.group(2))]
        node: dict[str, Any] = root
        for depth, segment in enumerate(path):
            last = depth == len(path) - 1
            if segment == "":
                if not isinstance(node, _Appending):
                    raise EncodingError(raw_key)
                segment = str(len(node))
            if last:
                node[segment] = value
                break
            child = node.get(segment)
            if not isinstance(child, dict):
                child = _Appending() if path[depth + 1] == "" else {}
                node[segment] = child
            node = child
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    if isinstance(node, _Appending) and not converted:
        return []
    return converted
