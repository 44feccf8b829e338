"""Certificates made in the test (trustme), ``rtrelay serve`` over TLS as a real process,
and a TLS front for the simulated provider."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import trustme

from support import free_port

MODEL = "gpt-realtime"


@dataclass(slots=True)
class Pki:
    """One CA and a server certificate for 127.0.0.1, as PEM files in ``where``."""

    where: Path
    ca: trustme.CA = field(default_factory=trustme.CA)

    @property
    def ca_file(self) -> Path:
        path = self.where / "ca.pem"
        if not path.exists():
            self.ca.cert_pem.write_to_path(str(path))
        return path

    @property
    def cert(self) -> Path:
        """Where ``issue()`` writes the relay's certificate chain by default."""
        return self.where / "cert.pem"

    @property
    def key(self) -> Path:
        return self.where / "key.pem"

    def relay_config(self) -> Path:
        """A relay config serving ``cert`` and ``key`` (see ``write_config``)."""
        return write_config(self.where, self.cert, self.key)

    def issue(self, cert: Path | None = None, key: Path | None = None) -> str:
        """Write a new server certificate (chain) and its key (by default to ``cert`` and
        ``key``); return its SHA-256 (hex)."""
        cert, key = cert or self.cert, key or self.key
        issued = self.ca.issue_cert("127.0.0.1", "localhost")
        cert.write_bytes(b"".join(pem.bytes() for pem in issued.cert_chain_pems))
        issued.private_key_pem.write_to_path(str(key))
        return der_sha256(ssl.PEM_cert_to_DER_cert(issued.cert_chain_pems[0].bytes().decode()))

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def der_sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


async def served_certificate(port: int, context: ssl.SSLContext) -> str:
    """The SHA-256 of the certificate a new TLS connection to 127.0.0.1:``port`` is shown."""
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
    return der_sha256(der)


def write_config(where: Path, cert: Path, key: Path) -> Path:
    """A relay over TLS with auth off, a throw-away SQLite store and an in-process provider."""
    text = f"""
[server]
tls_cert = "{cert}"
tls_key = "{key}"

[auth]
mode = "none"

[store]
url = "sqlite+aiosqlite:///{where / "relay.db"}"

[[channels]]
name = "simulated"
kind = "mock"
models = ["{MODEL}"]
"""
    path = where / "rtrelay.toml"
    path.write_text(text)
    return path


@dataclass(slots=True)
class ServeProcess:
    proc: asyncio.subprocess.Process
    port: int
    log: list[str]
    """stderr lines so far (JSON log lines)."""

    async def wait_for_log(self, needle: str, count: int = 1, timeout: float = 15) -> None:
        async with asyncio.timeout(timeout):
            while sum(needle in line for line in self.log) < count:
                assert self.proc.returncode is None, "rtrelay serve exited:\n" + "".join(self.log)
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def serve_tls_process(
    config_file: Path,
    context: ssl.SSLContext,
    *args: str,
    env: Mapping[str, str] | None = None,
    meanwhile: Callable[[ServeProcess], Awaitable[None]] | None = None,
) -> AsyncIterator[ServeProcess]:
    """``rtrelay serve --config FILE ARGS`` as a real process; yield once https answers.

    ``meanwhile(process)`` runs from the spawn on (start-up included) until the block ends.
    """
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rtrelay.cli.main",
        "serve",
        "--config",
        str(config_file),
        "--port",
        str(port),
        *args,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    served = ServeProcess(proc, port, [])

    async def read_log() -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            served.log.append(line.decode(errors="replace"))

    reader = asyncio.create_task(read_log())
    side = asyncio.create_task(meanwhile(served)) if meanwhile is not None else None
    try:
        connector = aiohttp.TCPConnector(ssl=context)
        async with aiohttp.ClientSession(connector=connector) as http, asyncio.timeout(30):
            while True:
                try:
                    async with http.get(f"https://127.0.0.1:{port}/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    assert proc.returncode is None, "rtrelay serve exited:\n" + "".join(served.log)
                    await asyncio.sleep(0.1)
        yield served
    finally:
        if side is not None:
            side.cancel()
            await asyncio.gather(side, return_exceptions=True)
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(30):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await reader


@contextlib.asynccontextmanager
async def tls_front(target_port: int, context: ssl.SSLContext) -> AsyncIterator[int]:
    """A TLS-terminating TCP forwarder to 127.0.0.1:``target_port``; yields its port.

    It puts the simulated provider behind a certificate, as a provider behind a private
    CA would be, without changing the provider.
    """
    pipes: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        for task in (
            asyncio.create_task(pipe(reader, up_writer)),
            asyncio.create_task(pipe(up_reader, writer)),
        ):
            pipes.add(task)
            task.add_done_callback(pipes.discard)

    server = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(pipes):
            task.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        await server.wait_closed()
