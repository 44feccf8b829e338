"""How different JSON parsers could read a client frame's top-level ``type``.

Shared by the fuzz targets: a parser keeping the first or the last of repeated
keys, one matching keys case-insensitively, one that replaces invalid UTF-8.
"""

from __future__ import annotations

import json
from typing import Any


def _pairs(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return pairs


def possible_types(frame: bytes) -> set[str]:
    """Every ``type`` some reasonable parser could act on (empty: none would)."""
    texts = []
    try:
        texts.append(frame.decode("utf-8"))
    except UnicodeDecodeError:
        texts.append(frame.decode("utf-8", errors="replace"))
    out: set[str] = set()
    for text in texts:
        try:
            top = json.loads(text, object_pairs_hook=_pairs)
        except (ValueError, RecursionError):
            continue
        if isinstance(top, list) and all(isinstance(p, tuple) for p in top):
            out |= {v for k, v in top if k.lower() == "type" and isinstance(v, str)}
    return out
