"""Helpers shared by the probe tests (a module of its own: ``conftest`` is not importable)."""

from __future__ import annotations

import contextlib
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Serve = Callable[..., contextlib.AbstractAsyncContextManager[str]]

KEY = "rk_live_0123456789abcdefSECRETxy"
"""A key the tests send; it must never appear in the probe's output."""


def make_certificate(directory: Path, *, common_name: str, san: str | None) -> tuple[Path, Path]:
    """A self-signed EC certificate from ``openssl req`` (``cryptography`` is not installed)."""
    cert, key = directory / f"{common_name}.crt", directory / f"{common_name}.key"
    command = [
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "2", "-subj", f"/CN={common_name}",
        "-keyout", str(key), "-out", str(cert),
    ]  # fmt: skip
    if san:
        command += ["-addext", f"subjectAltName={san}"]
    subprocess.run(command, check=True, capture_output=True, timeout=20)
    return cert, key


def server_context(pair: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(pair[0]), str(pair[1]))
    return context


def session_created(**session: Any) -> dict[str, Any]:
    body = {"id": "sess_probe", "object": "realtime.session", "model": "gpt-realtime"}
    body.update(session)
    return {"type": "session.created", "event_id": "event_1", "session": body}
