"""Scrubbing secrets out of text that leaves the relay (error messages, logs).

Provider error bodies can quote a key (OpenAI quotes a masked one, others may
not); every string that came from outside passes through ``redact`` before it is
shown to a client or written to a log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = ["mask", "redact"]

_SECRET_SHAPES: Final = re.compile(
    r"(?:sk|rk|ek|pk)[-_][A-Za-z0-9_\-]{6,}"  # OpenAI / rtrelay style keys
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,}"  # bearer tokens, whatever they look like
)


def redact(text: str, known: Iterable[str] = ()) -> str:
    """Replace known secrets and anything shaped like a key with ``***``."""
    for secret in known:
        if secret:
            text = text.replace(secret, "***")
    return _SECRET_SHAPES.sub("***", text)


def mask(secret: str) -> str:
    """A recognisable but useless form of a key, e.g. ``rk_ab…yz``."""
    if len(secret) <= 8:
        return "***"
    return f"{secret[:5]}…{secret[-2:]}"
