"""Each channel's health, as the admin API and ``rtrelay channels`` show it."""

from __future__ import annotations

from typing import Any

from rtrelay.route.router import Router

__all__ = ["channel_status"]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def channel_status(router: Router) -> list[dict[str, Any]]:
    out = []
    for channel in router.channels:
        breaker = router.breakers[channel.name]
        rate = breaker.success_rate()
        out.append(
            {
                "name": channel.name,
                "kind": channel.kind,
                "models": dict(channel.models),
                "priority": channel.priority,
                "weight": channel.weight,
                "shapes": list(channel.shapes),
                "state": str(breaker.state),
                "retry_after_s": round(breaker.retry_after(), 3),
                "consecutive_failures": breaker.consecutive_failures,
                "recent_success_rate": None if rate is None else round(rate, 4),
                "recent_attempts": len(breaker.outcomes),
                "dial_latency_p50_ms": _ms(breaker.latency_quantile(0.5)),
                "dial_latency_p99_ms": _ms(breaker.latency_quantile(0.99)),
                "last_error": breaker.last_error,
            }
        )
    return out
