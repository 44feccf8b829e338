"""rtrelay.route: choosing an upstream channel, dialing it, and keeping each channel's health."""

from __future__ import annotations

__all__: list[str] = []
