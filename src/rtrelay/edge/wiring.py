"""Building the relay's parts from settings: store, ledger, limiters, gate, tokens.

The only place that picks implementations (SQLite or PostgreSQL, in-process or
Redis limits), so the rest of the relay sees protocols.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from rtrelay.config import Settings
from rtrelay.gate.admission import STORE_TIMEOUT, Gate
from rtrelay.gate.fallback import FallbackLimits
from rtrelay.gate.limits import LeaseKeeper, MemoryLeases, MemoryRateLimiter, RateLimiter
from rtrelay.gate.tokens import TokenSigner
from rtrelay.ledger.journal import Journal, journal_path
from rtrelay.ledger.prices import PriceTable
from rtrelay.ledger.store import Store, open_store
from rtrelay.ledger.writer import LedgerWriter, SpendBook
from rtrelay.log import edge_log

__all__ = ["Closer", "Parts", "build_parts", "close_all"]

Closer = Callable[[], Awaitable[None]]

TOKEN_SECRET_ENV: Final = "RTRELAY_TOKEN_SECRET"
REDIS_TIMEOUT: Final = 2.0
"""Seconds a Redis connect or reply may take: a black-holed Redis must not hang handshakes."""


@dataclass(slots=True)
class Parts:
    gate: Gate
    store: Store
    writer: LedgerWriter
    spend: SpendBook
    prices: PriceTable
    tokens: TokenSigner
    node: str
    closers: list[Closer] = field(default_factory=list)
    limits: FallbackLimits | None = None
    """Redis limits and their ``on_error`` policy, when Redis is configured (``/readyz``)."""


def node_name(settings: Settings) -> str:
    """Which relay process holds a session (scopes ``mark_interrupted`` on restart)."""
    return f"{socket.gethostname()}:{settings.server.port}"


async def build_parts(settings: Settings, environ: Mapping[str, str]) -> Parts:
    closers: list[Closer] = []
    try:
        store = await open_store(settings.store.url)
        closers.append(store.close)
        node = node_name(settings)
        writer = _ledger_writer(settings, store)
        await writer.recover()  # first: a replayed session start must not stay "live"
        interrupted = await store.mark_interrupted(node=node)
        if interrupted:
            edge_log.warning(
                "sessions left open by a previous run marked interrupted",
                extra={"event": "interrupted", "count": interrupted, "node": node},
            )
        writer.start()
        closers.append(writer.close)
        spend = SpendBook(store, read_timeout=STORE_TIMEOUT)  # on the handshake path
        rate: RateLimiter
        limits: FallbackLimits | None = None
        if settings.redis.url:
            from redis.asyncio import Redis

            from rtrelay.gate.redis_limits import RedisLeases, RedisRateLimiter
            from rtrelay.gate.spend_feed import SpendFeed

            redis = Redis.from_url(
                settings.redis.url,
                socket_connect_timeout=REDIS_TIMEOUT,
                socket_timeout=REDIS_TIMEOUT,
            )
            closers.append(redis.aclose)
            limits = FallbackLimits(
                RedisLeases(redis, ttl=settings.redis.lease_ttl),
                RedisRateLimiter(redis),
                on_error=settings.redis.on_error,
                ping=redis.ping,
            )
            keeper = LeaseKeeper(limits)
            rate = limits
            feed = SpendFeed(  # its own client: a subscription blocks on reads
                Redis.from_url(settings.redis.url, socket_connect_timeout=REDIS_TIMEOUT), spend
            )
            feed.start()
            closers.append(feed.close)
        else:
            keeper = LeaseKeeper(MemoryLeases())
            rate = MemoryRateLimiter()
        keeper.start()
        closers.append(keeper.close)
        tokens = TokenSigner(_token_secret(settings, environ))
        gate = Gate(
            keys=store if settings.auth.mode == "keys" else None,
            leases=keeper,
            rate=rate,
            spend=spend,
            tokens=tokens,
            allowed_origins=settings.server.allowed_origins,
        )
        prices = PriceTable().with_overrides(settings.prices)
    except BaseException:
        await close_all(closers)
        raise
    return Parts(gate, store, writer, spend, prices, tokens, node, closers, limits)


def _ledger_writer(settings: Settings, store: Store) -> LedgerWriter:
    path = journal_path(settings.store.url, settings.store.journal)
    days = settings.store.retention_days
    return LedgerWriter(
        store,
        enabled=settings.store.ledger,
        journal=None if path is None else Journal(path),
        retention=timedelta(days=days) if days else None,
    )


def _token_secret(settings: Settings, environ: Mapping[str, str]) -> bytes:
    configured = environ.get(TOKEN_SECRET_ENV)
    if configured:
        return configured.encode()
    if settings.server.workers > 1:
        edge_log.warning(
            "no %s set: each worker signs client tokens with its own secret, so a token "
            "works only on the worker that minted it",
            TOKEN_SECRET_ENV,
        )
    return secrets.token_bytes(32)


async def close_all(closers: list[Closer]) -> None:
    for close in reversed(closers):
        await close()
