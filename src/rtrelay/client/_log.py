"""The client library's logger, declared once."""

from __future__ import annotations

import logging

__all__ = ["client_log"]

client_log = logging.getLogger("rtrelay.client")
