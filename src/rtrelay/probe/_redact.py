"""Keeping the probed key out of everything the probe prints or returns."""

from __future__ import annotations

from typing import Final

__all__ = ["mask_key", "redact"]

_SHOWN_HEAD: Final = 5
_SHOWN_TAIL: Final = 2
_MIN_MASKABLE: Final = 12
"""Shorter keys show no characters at all: a head and tail would reveal most of them."""


def mask_key(key: str | None) -> str | None:
    """``rk_abcdef…wxy`` → ``rk_ab…xy``: enough to tell keys apart, not enough to use one."""
    if key is None:
        return None
    if len(key) < _MIN_MASKABLE:
        return f"…({len(key)} chars)"
    return f"{key[:_SHOWN_HEAD]}…{key[-_SHOWN_TAIL:]}"


def redact(text: str, secret: str | None) -> str:
    """Replace every occurrence of ``secret`` in ``text`` by its mask.

    Servers may echo what they were sent (a subprotocol, an error message), so
    everything the probe records from the wire goes through here.
    """
    if not secret or secret not in text:
        return text
    masked = mask_key(secret)
    assert masked is not None
    return text.replace(secret, masked)
