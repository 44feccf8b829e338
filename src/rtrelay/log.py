"""rtrelay's loggers, declared once (names follow the data flow)."""

from __future__ import annotations

import logging

__all__ = ["access_log", "bridge_log", "edge_log", "gate_log", "ledger_log", "route_log"]

edge_log = logging.getLogger("rtrelay.edge")
gate_log = logging.getLogger("rtrelay.gate")
route_log = logging.getLogger("rtrelay.route")
bridge_log = logging.getLogger("rtrelay.bridge")
ledger_log = logging.getLogger("rtrelay.ledger")
access_log = logging.getLogger("rtrelay.access")
