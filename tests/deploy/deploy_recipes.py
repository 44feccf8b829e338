"""What the deployment recipes' tests share: where the files are, how long rtrelay may take
to stop, and durations as compose and systemd write them.

Every stop deadline in deploy/ (Kubernetes' grace period, compose's stop_grace_period,
systemd's TimeoutStopSec) must outlast rtrelay's own: the drain window of the config the
recipe ships, loaded by rtrelay's own loader with its defaults, plus the stop margin of
``rtrelay serve``. Changing either in src/ then fails these tests instead of leaving a
recipe that SIGKILLs draining sessions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from rtrelay import config
from rtrelay.cli._workers import STOP_MARGIN

DEPLOY: Final = Path(__file__).resolve().parents[2] / "deploy"

_SPAN: Final = re.compile(r"(\d+(?:\.\d+)?)\s*(us|ms|s|sec|seconds?|m|min|minutes?|h|hr|hours?)?")
_UNIT_SECONDS: Final = {
    "us": 1e-6,
    "ms": 1e-3,
    "": 1.0,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
}


def recipe_settings(path: Path, environ: Mapping[str, str] | None = None) -> config.Settings:
    """A recipe's rtrelay.toml as rtrelay reads it (defaults filled in, validated)."""
    return config.load(path, dict(environ or {}))


def stop_budget(settings: config.Settings) -> float:
    """Seconds ``rtrelay serve`` may take after SIGTERM: the drain, then its stop margin."""
    return settings.timeouts.drain + STOP_MARGIN


def seconds(span: str | int | float) -> float:
    """``60``, ``"60s"``, ``"1m30s"``, ``"1min 30s"``: seconds (compose and systemd spans)."""
    if isinstance(span, int | float):
        return float(span)
    text = span.strip()
    matches = list(_SPAN.finditer(text))
    if not matches or "".join(m.group(0) for m in matches).replace(" ", "") != text.replace(
        " ", ""
    ):
        raise ValueError(f"not a duration: {span!r}")
    return sum(float(m.group(1)) * _UNIT_SECONDS[m.group(2) or ""] for m in matches)


def secret_names(settings: config.Settings) -> set[str]:
    """Environment variables a relay with these settings reads secrets from."""
    names = {settings.admin.token_env}
    names |= {c.api_key_env for c in settings.channels if c.api_key_env}
    return names
