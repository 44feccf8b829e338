"""Choosing and dialing an upstream channel, with failover before the first frame.

Channels serving the model are tried by priority (lower first), weighted-random
within a priority, skipping open circuits, all within one handshake deadline.
Once a channel answers 101 the choice is final: a session never fails over
after frames have flowed.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

import aiohttp

from rtrelay.config import Channel, channel_credentials
from rtrelay.errors import (
    BetaNotSupportedByChannel,
    ModelNotFound,
    RelayError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from rtrelay.redact import redact
from rtrelay.route.breaker import BreakerPolicy, CircuitBreaker
from rtrelay.route.dial import Dialer, DialFailure, FailureKind
from rtrelay.route.families import Family, family_of, serves
from rtrelay.route.upstream import Upstream

__all__ = ["Attempt", "Connected", "Router", "RoutingFailed"]

DEFAULT_RETRY_AFTER: Final = 5

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Attempt:
    channel: str
    outcome: str  # "ok", "skipped:open", "timeout", "connect", "refused:<status>"
    seconds: float


class RoutingFailed(Exception):
    """No channel answered: ``error`` is the table row, ``attempts`` what was tried."""

    def __init__(self, error: RelayError, attempts: tuple[Attempt, ...]) -> None:
        self.error = error
        self.attempts = attempts
        super().__init__(error.message)


@dataclass(slots=True)
class Connected:
    ws: aiohttp.ClientWebSocketResponse[bool]
    channel: Channel
    attempts: list[Attempt] = field(default_factory=list)


class Router:
    """Chooses and dials channels; keeps each one's circuit breaker.

    Raises:
        ConfigError: at construction, a channel's provider key variable is unset or empty.
    """

    def __init__(
        self,
        channels: Sequence[Channel],
        dialer: Dialer,
        *,
        policy: BreakerPolicy | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.channels = tuple(channels)
        self._dialer = dialer
        self._rng = rng or random.Random()
        self._clock = clock
        self.breakers = {
            c.name: CircuitBreaker(
                policy=policy or BreakerPolicy(), clock=clock, rng=self._rng.random
            )
            for c in self.channels
        }
        # Read once, here (start-up): an unset or empty key fails start-up, never a session;
        # each key then lives on its channel's Upstream, and a dial reads no environment.
        credentials = channel_credentials(self.channels, os.environ if environ is None else environ)
        self._upstreams = {c.name: Upstream(c, credentials.get(c.name)) for c in self.channels}
        self._secrets = tuple(credentials.values())

    def candidates(self, model: str, *, beta: bool, family: Family = "realtime") -> list[Channel]:
        """Channels for ``model`` in dial order (before circuit checks). A transcription
        session that names no model (``model == ""``) goes to channels serving any
        transcription model.

        Raises:
            ModelNotFound: no channel serves the model (in the GA shape, for a GA client).
            BetaNotSupportedByChannel: a beta client, and no channel for the model speaks beta.
        """
        if model:
            serving = [c for c in self.channels if model in c.models and serves(c, family)]
        else:
            serving = [
                c
                for c in self.channels
                if serves(c, family) and any(family_of(m) == family for m in c.models)
            ]
        if not serving:
            what = f"the model '{model}'" if model else f"{family} sessions"
            raise ModelNotFound(f"No upstream channel serves {what}.", param="model")
        shape = "beta" if beta else "ga"
        serving = [c for c in serving if shape in c.shapes]
        if not serving and beta:
            raise BetaNotSupportedByChannel(param="OpenAI-Beta")
        if not serving:
            # A GA client on a beta-only upstream would get events it cannot parse.
            raise ModelNotFound(
                f"No upstream channel serves the model '{model}' in the GA shape; "
                "its channels speak only the beta shape (send OpenAI-Beta: realtime=v1).",
                param="model",
            )
        ordered: list[Channel] = []
        for priority in sorted({c.priority for c in serving}):
            ordered.extend(self._weighted_order([c for c in serving if c.priority == priority]))
        return ordered

    def _weighted_order(self, group: list[Channel]) -> list[Channel]:
        # Efraimidis-Spirakis: sort by u**(1/w), a weighted random permutation.
        return sorted(group, key=lambda c: self._rng.random() ** (1.0 / c.weight), reverse=True)

    async def connect(
        self,
        model: str,
        *,
        beta: bool,
        request_id: str,
        dial_timeout: float,
        deadline: float,
        channels: list[Channel] | None = None,
        family: Family = "realtime",
    ) -> Connected:
        """Dial the first channel that answers 101 (of ``channels``, the candidates admission
        worked out, or of ``candidates(model)``).

        Raises:
            RoutingFailed: no channel could be reached; carries the table row explaining why.
        """
        request_of = self._upstreams

        async def dial(channel: Channel, timeout: float) -> aiohttp.ClientWebSocketResponse[bool]:
            upstream = request_of[channel.name]
            request = upstream.request(model, beta=beta, request_id=request_id, family=family)
            return await self._dialer.dial(request, timeout)

        plan = (
            channels if channels is not None else self.candidates(model, beta=beta, family=family)
        )
        ws, channel, attempts = await self.failover(
            plan, dial, dial_timeout=dial_timeout, deadline=deadline
        )
        return Connected(ws=ws, channel=channel, attempts=attempts)

    async def failover(
        self,
        channels: Sequence[Channel],
        dial: Callable[[Channel, float], Awaitable[T]],
        *,
        dial_timeout: float,
        deadline: float,
    ) -> tuple[T, Channel, list[Attempt]]:
        """Try ``dial(channel, timeout)`` on each channel in order until one succeeds.

        The one failover rule, for WebSocket dials and WebRTC offers alike: open
        circuits are skipped, every attempt updates its channel's breaker, connect
        errors, timeouts, 5xx and 429 move on, any other refusal stops (the provider
        judged the request itself), all within ``deadline`` s.

        Raises:
            RoutingFailed: no channel could be reached; carries the table row explaining why.
        """
        attempts: list[Attempt] = []
        failures: list[DialFailure] = []
        retry_after: float | None = None
        end = self._clock() + deadline
        for channel in channels:
            breaker = self.breakers[channel.name]
            if not breaker.allow():
                attempts.append(Attempt(channel.name, "skipped:open", 0.0))
                wait = breaker.retry_after()
                retry_after = wait if retry_after is None else min(retry_after, wait)
                continue
            remaining = end - self._clock()
            if remaining <= 0:
                breaker.release_trial()
                break
            started = self._clock()
            try:
                result = await dial(channel, min(dial_timeout, remaining))
            except DialFailure as failure:
                elapsed = self._clock() - started
                outcome = (
                    f"refused:{failure.status}"
                    if failure.kind is FailureKind.REFUSED
                    else str(failure.kind)
                )
                attempts.append(Attempt(channel.name, outcome, elapsed))
                breaker.record_failure(f"{outcome}: {failure.detail}", trip=failure.misconfigured)
                failures.append(failure)
                if not failure.retryable and not failure.misconfigured:
                    break  # the provider judged the request itself; another channel won't differ
                continue
            except BaseException:
                # Cancelled, or a bug: no verdict on the channel, but a half-open trial
                # slot must not stay taken, or the circuit could never close again.
                breaker.release_trial()
                raise
            elapsed = self._clock() - started
            breaker.record_success(elapsed)
            attempts.append(Attempt(channel.name, "ok", elapsed))
            return result, channel, attempts
        raise RoutingFailed(self._explain(failures, retry_after, attempts), tuple(attempts))

    @property
    def dialer(self) -> Dialer:
        """The WebSocket dialer (a WebRTC call's sideband is dialed with it too)."""
        return self._dialer

    def upstream(self, name: str) -> Upstream:
        """The channel ``name`` with its provider key (``KeyError`` if there is none)."""
        return self._upstreams[name]

    def _explain(
        self, failures: list[DialFailure], retry_after: float | None, attempts: list[Attempt]
    ) -> RelayError:
        """The table row for a handshake no channel accepted.

        A provider's own answer says more than anything rtrelay could: once failover is
        exhausted, the last refusal (any status, 429 and 5xx included) reaches the client
        as ``upstream_rejected`` with the provider's status and error body in the message
        and its ``Retry-After`` passed on. Only when no provider answered at all is it
        ``upstream_timeout`` (every dial timed out) or ``upstream_unavailable``.
        """
        refusals = [f for f in failures if f.kind is FailureKind.REFUSED]
        if refusals:
            f = refusals[-1]
            body = redact(f.body.decode("utf-8", "replace").strip(), self._secrets)[:1000]
            message = f"The provider refused the handshake with HTTP {f.status}"
            return UpstreamRejected(
                f"{message}: {body}" if body else f"{message}.",
                retry_after=_seconds(f.retry_after),
            )
        if failures and all(f.kind is FailureKind.TIMEOUT for f in failures):
            return UpstreamTimeout()
        after = DEFAULT_RETRY_AFTER if retry_after is None else max(1, math.ceil(retry_after))
        tried = ", ".join(f"{a.channel}: {a.outcome}" for a in attempts) or "none"
        return UpstreamUnavailable(
            f"No upstream channel could be reached (tried {tried}).", retry_after=after
        )


MAX_RETRY_AFTER: Final = 3600
"""A provider's ``Retry-After`` is passed on up to an hour (a bigger one is a typo or a ban)."""


def _seconds(retry_after: str | None) -> int | None:
    """A provider's ``Retry-After`` in whole seconds (delay-seconds form only), if usable."""
    if retry_after is None:
        return None
    try:
        seconds = float(retry_after.strip())
    except ValueError:
        return None  # an HTTP-date, or garbage: no hint rather than a wrong one
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(MAX_RETRY_AFTER, max(1, math.ceil(seconds)))
