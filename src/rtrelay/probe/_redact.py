"""Keeping the probed key out of everything the probe prints or returns."""

from __future__ import annotations

from rtrelay.redact import mask

__all__ = ["mask_key", "redact"]


def mask_key(key: str | None) -> str | None:
    """The key as the probe may show it (``rtrelay.redact.mask``), or None."""
    return None if key is None else mask(key)


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
