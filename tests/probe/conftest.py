"""Ad-hoc servers on 127.0.0.1 (port 0) for the probe to observe, and a throwaway certificate."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from probe_helpers import KEY, Handler, Serve, make_certificate


@pytest.fixture
def key() -> str:
    return KEY


@pytest.fixture
def serve() -> Serve:
    """``async with serve(handler) as url``: aiohttp at ``/v1/realtime``, ``url`` ends ``/v1``."""

    @contextlib.asynccontextmanager
    async def _serve(
        handler: Handler, *, ssl_context: ssl.SSLContext | None = None
    ) -> AsyncIterator[str]:
        app = web.Application()
        app.router.add_get("/v1/realtime", handler)
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        try:
            await site.start()
            port = runner.addresses[0][1]
            scheme = "wss" if ssl_context else "ws"
            yield f"{scheme}://127.0.0.1:{port}/v1"
        finally:
            await runner.cleanup()

    return _serve


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate valid for 127.0.0.1."""
    return make_certificate(
        tmp_path_factory.mktemp("tls"), common_name="127.0.0.1", san="IP:127.0.0.1"
    )


@pytest.fixture(scope="session")
def wrong_host_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for another name than 127.0.0.1."""
    return make_certificate(
        tmp_path_factory.mktemp("tls"), common_name="other.example", san="DNS:other.example"
    )
