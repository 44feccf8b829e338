"""rtrelay: a relay gateway for realtime voice AI over WebSocket."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
