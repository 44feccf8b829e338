"""Admission: the one pipeline that decides whether a client may open a session.

The WebSocket upgrade and the token endpoints both go through ``Gate``. Order is
the contract of DESIGN.md: credential → key valid → origin → model allowed →
(route exists) → concurrency lease → session-start rate → budget. Each refusal
is a row of the error table; a lease taken is always given back.

The store (keys, spend) is a seam: any failure behind it, or a read slower than
``STORE_TIMEOUT``, is ``limits_unavailable`` (503 + ``Retry-After``), logged once per
outage, never a 500. A key looked up in the
last ``cache_seconds`` (5 s) is still admitted from the cache, and a spend read in the
last 10 s (``SpendBook``) still answers the budget check; past those, the handshake is
refused until the store answers again. No stale value is served beyond its TTL: a key
revoked during an outage must not keep working because the outage hid the revocation.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Generic, Protocol, TypeVar

from rtrelay.cache import LoadingCache
from rtrelay.errors import (
    ConcurrencyLimitExceeded,
    InsufficientQuota,
    InvalidApiKey,
    LimitsUnavailable,
    MissingApiKey,
    MissingModel,
    ModelNotAllowed,
    OriginNotAllowed,
    RateLimitExceeded,
    RelayError,
)
from rtrelay.gate.limits import RateLimiter
from rtrelay.gate.tokens import TokenSigner
from rtrelay.log import gate_log

__all__ = [
    "Admission",
    "Ask",
    "Gate",
    "KeyDirectory",
    "KeyInfo",
    "LeaseHolder",
    "Refused",
    "SpendBook",
]

T = TypeVar("T")
P = TypeVar("P")

STORE_RETRY_AFTER: Final = 5
"""``Retry-After`` seconds when the store cannot be reached."""
STORE_TIMEOUT: Final = 5.0
"""Seconds one store read on the handshake path may take (normally about a millisecond): a
black-holed database must cost a 503, not a handshake held open until TCP gives up."""


class KeyInfo(Protocol):
    """The parts of a stored key admission reads (``rtrelay.ledger`` provides it)."""

    @property
    def id(self) -> str: ...
    @property
    def prefix(self) -> str: ...
    @property
    def models(self) -> tuple[str, ...] | None: ...
    @property
    def origins(self) -> tuple[str, ...] | None: ...
    @property
    def max_sessions(self) -> int | None: ...
    @property
    def sessions_per_minute(self) -> int | None: ...
    @property
    def budget_usd(self) -> Decimal | None: ...
    def is_active(self, now: datetime) -> bool: ...


class KeyDirectory(Protocol):
    async def find_key(self, secret: str) -> KeyInfo | None: ...
    async def get_key(self, key_id: str) -> KeyInfo | None: ...


class LeaseHolder(Protocol):
    """Takes and gives back leases (``LeaseKeeper``, which also renews them)."""

    async def acquire(self, key_id: str, session_id: str, limit: int | None) -> bool: ...
    async def release(self, key_id: str, session_id: str) -> None: ...


class SpendBook(Protocol):
    async def spent(self, key_id: str) -> Decimal: ...


class Refused(Exception):
    """Admission said no: the table row, and the key when it was known by then (a refusal
    after authentication is recorded and logged against the key)."""

    def __init__(self, error: RelayError, key: KeyInfo | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.key = key


@dataclass(frozen=True, slots=True)
class Ask:
    """What a client asks to be admitted for: from an upgrade, a token request, a call.

    ``model`` is ``None`` when the request names none (a token request may not);
    ``session`` is ``False`` for minting a token: no session starts, so no lease or
    rate slot is taken (the session the token opens later takes them). ``rate`` is
    ``False`` when ``Gate.screen`` already took the rate slot. ``model`` is ``""`` for a
    transcription session, whose model is in its session config.
    """

    credential: str | None
    model: str | None
    origin: str | None
    beta: bool = False
    session: bool = True
    rate: bool = True


@dataclass(slots=True)
class Admission(Generic[P]):
    """An admitted client, owning its concurrency lease until ``release()`` (idempotent).

    ``plan`` is what the route step worked out for the model (the channels to dial, in
    order), computed once during admission and reused for the dial.
    """

    session_id: str
    key: KeyInfo | None
    model: str | None
    plan: P | None = None
    leased: bool = False
    _release: Callable[[Admission[P]], Awaitable[None]] | None = None

    @property
    def key_id(self) -> str | None:
        return self.key.id if self.key is not None else None

    @property
    def key_prefix(self) -> str | None:
        return self.key.prefix if self.key is not None else None

    async def release(self) -> None:
        """Give the lease back (once, however the session ended)."""
        if self._release is not None:
            release, self._release = self._release, None
            await release(self)


def new_session_id() -> str:
    return "rsess_" + secrets.token_hex(12)


class Gate:
    def __init__(
        self,
        *,
        keys: KeyDirectory | None,
        leases: LeaseHolder,
        rate: RateLimiter,
        spend: SpendBook | None,
        tokens: TokenSigner | None = None,
        allowed_origins: Sequence[str] = (),
        cache_seconds: float = 5.0,
        store_timeout: float = STORE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._keys = keys
        self._leases = leases
        self._rate = rate
        self._spend = spend
        self._tokens = tokens
        self._allowed_origins = frozenset(allowed_origins)
        self._cache: LoadingCache[str, KeyInfo | None] = LoadingCache(cache_seconds, clock=clock)
        self._wall_clock = wall_clock
        self._store_timeout = store_timeout
        self._store_down = False

    async def authenticate(self, credential: str | None) -> tuple[KeyInfo | None, str | None]:
        """The key behind a credential, and the model a short-lived token is bound to.

        Raises:
            MissingApiKey, InvalidApiKey
            LimitsUnavailable: the store cannot be reached (and the key is not cached).
        """
        if self._keys is None:
            return None, None
        if credential is None:
            raise MissingApiKey()
        bound_model: str | None = None
        if credential.startswith("ek_") and self._tokens is not None:
            claims = self._tokens.verify(credential, self._wall_clock().timestamp())
            if claims is None:
                raise InvalidApiKey("The client token is invalid or has expired.")
            key_id, bound_model = claims.key_id, claims.model
            key = await self._cached(("id", key_id), lambda: self._keys_get(key_id))
        else:
            key = await self._cached(("secret", credential), lambda: self._keys_find(credential))
        if key is None or not key.is_active(self._wall_clock()):
            raise InvalidApiKey()
        return key, bound_model

    async def _keys_find(self, secret: str) -> KeyInfo | None:
        keys = self._keys
        assert keys is not None
        return await self._from_store(lambda: keys.find_key(secret))

    async def _keys_get(self, key_id: str) -> KeyInfo | None:
        keys = self._keys
        assert keys is not None
        return await self._from_store(lambda: keys.get_key(key_id))

    async def _from_store(self, read: Callable[[], Awaitable[T]]) -> T:
        """One read from the store, its failures translated at this seam.

        Raises:
            LimitsUnavailable: the store failed or took over ``store_timeout`` (logged with
                its traceback once per outage).
        """
        try:
            async with asyncio.timeout(self._store_timeout):
                value = await read()
        except Exception as exc:  # TimeoutError included
            if not self._store_down:
                self._store_down = True
                gate_log.warning(
                    "store unreachable on the handshake path: refusing with limits_unavailable",
                    extra={"event": "store_unreachable"},
                    exc_info=True,
                )
            raise LimitsUnavailable(
                "The relay cannot reach its key store right now; retry shortly.",
                retry_after=STORE_RETRY_AFTER,
            ) from exc
        if self._store_down:
            self._store_down = False
            gate_log.info("store reachable again", extra={"event": "store_recovered"})
        return value

    async def _cached(
        self, tag: tuple[str, str], load: Callable[[], Awaitable[KeyInfo | None]]
    ) -> KeyInfo | None:
        # Cached by hash of the credential, never the credential itself.
        slot = hashlib.sha256(f"{tag[0]}:{tag[1]}".encode()).hexdigest()
        return await self._cache.get(slot, load)

    def check_policy(
        self, key: KeyInfo | None, model: str, origin: str | None, bound: str | None
    ) -> None:
        """Origin, then model (no I/O).

        Raises:
            OriginNotAllowed, ModelNotAllowed
        """
        self.check_origin(key, origin)
        self.check_model(key, model, bound)

    def check_origin(self, key: KeyInfo | None, origin: str | None) -> None:
        """The Origin rule, the only copy of it (WebSocket upgrades and token minting).

        Origin lists (``server.allowed_origins``, a key's ``origins``) keep *other
        sites' pages* from using a key or a token minted from it. Browsers always send
        ``Origin`` on a WebSocket handshake and a cross-origin ``fetch``, so a request
        without one does not come from a web page (an app server, a phone app, a
        CLI): no list applies to it and it is allowed. A request with an Origin must
        be in every list that is set.

        Raises:
            OriginNotAllowed
        """
        if origin is None:
            return
        if self._allowed_origins and origin not in self._allowed_origins:
            raise OriginNotAllowed(f"The Origin '{origin}' is not allowed to connect.")
        if key is not None and key.origins and origin not in key.origins:
            raise OriginNotAllowed(f"The Origin '{origin}' is not allowed for this key.")

    def check_model(self, key: KeyInfo | None, model: str, bound: str | None = None) -> None:
        if bound is not None and bound != model:
            raise ModelNotAllowed(f"This client token is bound to the model '{bound}'.")
        if key is not None and key.models is not None and model not in key.models:
            raise ModelNotAllowed(f"This API key may not use the model '{model}'.")

    async def check_budget(self, key: KeyInfo | None) -> None:
        """Raises ``InsufficientQuota`` when the key's budget is spent (``LimitsUnavailable``
        when the spend cannot be read)."""
        spend = self._spend
        if key is None or key.budget_usd is None or spend is None:
            return
        if await self._from_store(lambda: spend.spent(key.id)) >= key.budget_usd:
            raise InsufficientQuota()

    async def admit(self, ask: Ask, route: Callable[[str, bool], P]) -> Admission[P]:
        """The admission pipeline, in DESIGN.md's order, for every entry point.

        credential → key valid → origin → model allowed (and bound to the token's) →
        ``route(model, beta)`` (no channel: 404 before any lease) → lease → rate → budget.
        For a token request (``ask.session`` false) there is no lease or rate step.

        Raises:
            Refused: with the table row (MissingApiKey, InvalidApiKey, OriginNotAllowed,
                MissingModel, ModelNotAllowed, what ``route`` raises: ModelNotFound,
                BetaNotSupportedByChannel; ConcurrencyLimitExceeded, RateLimitExceeded,
                InsufficientQuota; LimitsUnavailable when Redis or the store is unreachable
                and the policy is to refuse) and the key if it was known.
        """
        key, bound = await self._key_of(ask)
        try:
            self.check_origin(key, ask.origin)
            model = ask.model
            if model is None and ask.session:
                raise MissingModel(param="model")
            plan = None
            if model is not None:
                if model:
                    self.check_model(key, model, bound)
                plan = route(model, ask.beta)
            if not ask.session:
                await self.check_budget(key)
                return Admission(session_id="", key=key, model=model, plan=plan)
            admission = await self.admit_session(key, model or "", rate=ask.rate)
        except RelayError as error:
            raise Refused(error, key) from error
        admission.plan = plan
        return admission

    async def screen(self, ask: Ask, route: Callable[[str, bool], object]) -> None:
        """What can be refused before a session's model is known (GPT-Live, before its
        ``session.start``): credential → key → origin → a ``?model=`` hint's policy and
        route → rate → budget. The rate slot is taken here: ``admit`` with
        ``Ask(rate=False)`` follows once the model is known.

        Raises:
            Refused: as ``admit`` (no lease is taken, so none is held).
        """
        key, bound = await self._key_of(ask)
        try:
            self.check_origin(key, ask.origin)
            if ask.model:
                self.check_model(key, ask.model, bound)
                route(ask.model, ask.beta)
            if key is not None:
                await self._take_rate(key)
            await self.check_budget(key)
        except RelayError as error:
            raise Refused(error, key) from error

    async def _key_of(self, ask: Ask) -> tuple[KeyInfo | None, str | None]:
        """``authenticate``, refusing with no key known (the first step of both pipelines)."""
        try:
            return await self.authenticate(ask.credential)
        except RelayError as error:
            raise Refused(error, None) from error

    async def _take_rate(self, key: KeyInfo) -> None:
        wait = await self._rate.hit(key.id, key.sessions_per_minute)
        if wait is not None:
            raise RateLimitExceeded(
                f"This key may start {key.sessions_per_minute} session(s) per minute.",
                retry_after=max(1, math.ceil(wait)),
            )

    async def admit_session(
        self, key: KeyInfo | None, model: str, *, rate: bool = True
    ) -> Admission[Any]:
        """Take a concurrency lease and (unless ``rate`` is false) a rate slot, then check
        the budget.

        Raises:
            ConcurrencyLimitExceeded, RateLimitExceeded, InsufficientQuota
            LimitsUnavailable: Redis or the store is unreachable and the policy is to refuse.
        """
        admission: Admission[Any] = Admission(
            session_id=new_session_id(), key=key, model=model, _release=self.release
        )
        if key is None:
            return admission
        if not await self._leases.acquire(key.id, admission.session_id, key.max_sessions):
            raise ConcurrencyLimitExceeded(
                f"This key may hold {key.max_sessions} session(s) open at once.", retry_after=1
            )
        admission.leased = True
        try:
            if rate:
                await self._take_rate(key)
            await self.check_budget(key)
        except BaseException:
            await self.release(admission)
            raise
        return admission

    async def release(self, admission: Admission[Any]) -> None:
        if admission.leased and admission.key is not None:
            admission.leased = False
            await self._leases.release(admission.key.id, admission.session_id)
