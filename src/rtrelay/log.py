"""rtrelay's loggers, declared once (names follow the data flow), and their formats.

Events are logged with ``extra={...}`` fields; the JSON formatter writes those
fields as keys, so a session start or end is one machine-readable line. Nothing
secret is ever passed in ``extra`` (keys appear only as their prefix).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final

import orjson

__all__ = [
    "JsonFormatter",
    "access_log",
    "bridge_log",
    "configure_logging",
    "edge_log",
    "gate_log",
    "ledger_log",
    "route_log",
]

edge_log = logging.getLogger("rtrelay.edge")
gate_log = logging.getLogger("rtrelay.gate")
route_log = logging.getLogger("rtrelay.route")
bridge_log = logging.getLogger("rtrelay.bridge")
ledger_log = logging.getLogger("rtrelay.ledger")
access_log = logging.getLogger("rtrelay.access")

_STANDARD: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """Human-readable: the message followed by ``key=value`` fields."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items() if v is not None)
        return f"{text} {extra}" if extra else text


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migration chatter at start-up
