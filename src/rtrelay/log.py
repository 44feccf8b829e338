"""rtrelay's loggers, declared once (names follow the data flow), and their formats.

Events are logged with ``extra={...}`` fields; the JSON formatter writes those
fields as keys, so a session start or end is one machine-readable line. Nothing
secret is ever passed in ``extra`` (keys appear only as their prefix).

Third-party loggers (aiohttp, asyncio, SQLAlchemy) write what they are given,
request lines and tracebacks included, so every handler ``configure_logging``
installs carries ``RedactingFilter``: whatever logger a record comes from, a
credential-shaped string in it is gone before any formatter sees it.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final, TextIO

import orjson

from rtrelay.redact import redact

__all__ = [
    "JsonFormatter",
    "RedactingFilter",
    "TextFormatter",
    "access_log",
    "bridge_log",
    "configure_logging",
    "edge_log",
    "gate_log",
    "ledger_log",
    "log_handler",
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
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:  # RedactingFilter leaves the scrubbed traceback here
            line["exception"] = record.exc_text
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """Human-readable: the message followed by ``key=value`` fields."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items() if v is not None)
        return f"{text} {extra}" if extra else text


class RedactingFilter(logging.Filter):
    """Scrub credential shapes (``rtrelay.redact``) from a record, whoever logged it.

    The message is rendered once and its arguments dropped (a secret can hide in
    any argument's ``repr``); a traceback is rendered into ``exc_text``, which
    every formatter prints instead of rendering ``exc_info`` again; string
    ``extra`` fields are scrubbed too. It changes the record in place, so the
    handlers after this one see the scrubbed record as well.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format call: show the format, never the arguments
            message = f"{record.msg} (unformattable arguments)"
        record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in _fields(record).items():
            if isinstance(value, str):
                setattr(record, name, redact(value))
        return True


_TRACEBACKS: Final = logging.Formatter()


def log_handler(stream: TextIO, fmt: str = "json") -> logging.Handler:
    """A handler writing to ``stream`` as rtrelay's are built: formatted, and redacting."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    return handler


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = log_handler(sys.stderr, fmt)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migration chatter at start-up
