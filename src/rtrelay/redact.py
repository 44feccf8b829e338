"""Scrubbing secrets out of text that leaves the relay (error messages, logs).

Provider error bodies can quote a key (OpenAI quotes a masked one, others may
not); every string that came from outside passes through ``redact`` before it is
shown to a client or written to a log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from rtrelay.wire import KEY_SUBPROTOCOL_PREFIX

__all__ = ["mask", "redact"]

_SECRET_SHAPES: Final = re.compile(
    # OpenAI / rtrelay style keys, and ek_<payload>.<signature> tokens whole; not inside a
    # word ("network_errors" is no key)
    r"(?<![A-Za-z0-9])(?:sk|rk|ek|pk)[-_][A-Za-z0-9_\-]{6,}(?:\.[A-Za-z0-9_\-]+)*"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,}"  # bearer tokens, whatever they look like
    # whatever the key's shape: a browser's key subprotocol, and the value of a credential
    # header however it is quoted (a request line, a dict's repr); the name stays readable
    rf"|(?<={re.escape(KEY_SUBPROTOCOL_PREFIX)})[^\s,;'\"\]\)]+"
    r"|(?P<name>(?i:\b(?:api-key|authorization))['\"]?[ \t]*[:=][ \t]*['\"]?)[^\s'\"][^\r\n'\"]*"
)


def _hide(match: re.Match[str]) -> str:
    return f"{match['name'] or ''}***"


def redact(text: str, known: Iterable[str] = ()) -> str:
    """Replace known secrets and anything shaped like a key with ``***``."""
    for secret in known:
        if secret:
            text = text.replace(secret, "***")
    return _SECRET_SHAPES.sub(_hide, text)


_SHOWN_HEAD: Final = 5
_SHOWN_TAIL: Final = 2
_MIN_MASKABLE: Final = 12
"""Shorter keys show no characters at all: a head and tail would reveal most of them."""


def mask(secret: str) -> str:
    """``rk_abcdef…wxy`` → ``rk_ab…xy``: enough to tell keys apart, not enough to use one."""
    if len(secret) < _MIN_MASKABLE:
        return f"…({len(secret)} chars)"
    return f"{secret[:_SHOWN_HEAD]}…{secret[-_SHOWN_TAIL:]}"
