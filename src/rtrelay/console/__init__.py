"""rtrelay.console: the operators' web console (``/console``), the landing page (``/``)
and the admin API's browsable reference (``/admin/v1/docs``).

Server-rendered (Jinja2 templates, htmx for the live parts, uPlot for the charts,
Swagger UI for the reference), every asset vendored under ``static/``: it works with
no internet and installs with the Python package, no Node.
"""

from __future__ import annotations

from rtrelay.console.app import create_console_app, mount_console

__all__ = ["create_console_app", "mount_console"]
