"""``rtrelay serve``: run the relay (``--demo``: with a simulated provider, nothing to set up)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import os
import signal
import sys
import tempfile
from typing import Any

from rtrelay import config
from rtrelay.cli._demo import demo_settings, print_demo_banner
from rtrelay.cli.db import store_label
from rtrelay.edge.app import RELAY, create_app
from rtrelay.edge.server import Protections, listen
from rtrelay.edge.tls import ServerTLS, server_tls
from rtrelay.log import configure_logging, edge_log
from rtrelay.route.upstream import channel_tls

__all__ = ["register", "serve"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("serve", help="run the relay")
    p.add_argument("--config", help="TOML config file (RTRELAY_* variables override it)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default 8080)")
    p.add_argument("--workers", type=int, help="worker processes sharing the port")
    p.add_argument(
        "--demo",
        action="store_true",
        help="simulated provider + local SQLite + a demo key: needs no config and no provider key",
    )
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    # SIGHUP reloads the TLS certificate (serve(), or the master passing it on): until one
    # of them handles it, it must not end the process. The certificate is read after the
    # handler is in place, so none is missed. (A spawned worker starts with SIGHUP's
    # default action again: _workers.py covers that.)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        settings = config.load(args.config, os.environ)
    except config.ConfigError as exc:
        print(f"rtrelay: {exc}", file=sys.stderr)
        return 2
    server = settings.server
    server = dataclasses.replace(
        server,
        host=args.host or server.host,
        port=server.port if args.port is None else args.port,
        workers=args.workers or server.workers,
    )
    settings = dataclasses.replace(settings, server=server)
    if args.demo:
        settings = demo_settings(settings)
    if not settings.channels:
        print("rtrelay: no channels configured (try --demo)", file=sys.stderr)
        return 2
    configure_logging(settings.logging.level, settings.logging.format)
    try:  # before any worker starts: a missing provider key must not become clients' 401s,
        # nor a bad certificate file a worker that dies at each restart
        config.channel_credentials(settings.channels, os.environ)
        for channel in settings.channels:
            channel_tls(channel)
        server_tls(settings.server)
    except config.ConfigError as exc:
        print(f"rtrelay: {exc}", file=sys.stderr)
        return 2
    edge_log.info("store: %s", store_label(settings.store.url), extra={"event": "store"})
    if settings.server.workers == 1:
        return _run(settings, demo=args.demo)
    from rtrelay.cli._workers import supervise

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return supervise(settings, _run, demo=args.demo)
    # Workers write their metrics here; /metrics on any worker shows the sum.
    with tempfile.TemporaryDirectory(prefix="rtrelay-metrics-") as metrics_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        return supervise(settings, _run, demo=args.demo)


def _run(settings: config.Settings, *, demo: bool = False) -> int:
    configure_logging(settings.logging.level, settings.logging.format)  # also in spawned workers
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep serving without it
        pass
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings, demo=demo))
    return 0


async def serve(settings: config.Settings, *, demo: bool = False) -> None:
    """Serve until SIGTERM/SIGINT, then drain: refuse new sessions, let live ones finish.

    SIGHUP reloads the TLS certificate (``[server] tls_cert``) for new connections; live
    sessions keep theirs.
    """
    loop = asyncio.get_running_loop()
    tls: ServerTLS | None = None

    def reload_tls() -> None:
        if tls is not None:
            tls.reload()
        else:
            edge_log.info("SIGHUP: no TLS certificate to reload", extra={"event": "sighup"})

    loop.add_signal_handler(signal.SIGHUP, reload_tls)  # before the files are first read
    tls = server_tls(settings.server)
    app = await create_app(settings)
    runner = await listen(
        app,
        host=settings.server.host,
        port=settings.server.port,
        protections=Protections.from_settings(settings, app[RELAY].metrics),
        reuse_port=settings.server.workers > 1,
        shutdown_timeout=5.0,
        ssl_context=None if tls is None else tls.context,
    )
    # Start-up leaves ~10^5 long-lived objects (aiohttp, SQLAlchemy, the app) that every
    # full collection would walk again: 80-110 ms pauses that were the relay's p99.
    gc.collect()
    gc.freeze()
    host, port = runner.addresses[0][:2]
    scheme = "http" if tls is None else "https"
    edge_log.info(
        "listening",
        extra={
            "event": "listening",
            "url": f"{scheme}://{host}:{port}",
            **({} if tls is None else {"cert": tls.cert, "sha256": tls.fingerprint}),
        },
    )
    if demo:
        await print_demo_banner(app, f"{host}:{port}", tls=tls is not None)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        edge_log.info("draining", extra={"event": "draining", "window_s": settings.timeouts.drain})
        await app[RELAY].drain(settings.timeouts.drain)
    finally:
        await runner.cleanup()
        edge_log.info("stopped", extra={"event": "stopped"})
