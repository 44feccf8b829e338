"""Jinja2 templates of the console and the public pages, with the filters they share.

Autoescaping is on for every template (a key's name, a model, an Origin and a
provider's error text are outside input), and an undefined variable is an error,
not an empty string, so a typo in a template fails its test instead of a page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import jinja2
from aiohttp import web

__all__ = ["PAGE_HEADERS", "environment", "render"]

PAGE_HEADERS: Final = {
    # Every script and style is a file served by the relay itself: nothing inline,
    # nothing from another host. Swagger UI's page (docs) adds inline styles only.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _money(value: Decimal | str | None, places: int | None = None) -> str:
    """USD: cents from a dollar up, else six places (a response costs fractions of a cent)."""
    if value is None:
        return "-"
    amount = Decimal(value)
    if places is None:
        places = 2 if abs(amount) >= 1 or amount == 0 else 6
    return f"${amount:,.{places}f}"


def _when(value: datetime | str | float | None) -> str:
    """A time in UTC, to the second: ``2026-12-01 14:05:09``."""
    if value is None:
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    elif isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _count(value: int | float | None) -> str:
    return "-" if value is None else f"{int(value):,}"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("rtrelay.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=_money, when=_when, duration=_duration, percent=_percent, count=_count)
    return env


def render(
    env: jinja2.Environment,
    name: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """``name`` rendered as an HTML response with the console's security headers."""
    html = env.get_template(name).render(context)
    return web.Response(
        text=html,
        status=status,
        content_type="text/html",
        headers={**PAGE_HEADERS, **(headers or {})},
    )
