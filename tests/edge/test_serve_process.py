"""``rtrelay serve`` as a real process: SIGTERM drains, SIGKILL loses no completed response,
and ``--workers N`` never leaves a worker without its master."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import psutil
import pytest

from rtrelay.ledger.keys import KeySpec
from rtrelay.ledger.store import open_store
from rtrelay.mock import MockOptions, MockProvider
from support import read_error_and_close, serve_process, upgrade_headers, write_config


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    async with MockProvider(MockOptions(realtime_pacing=0, reply_audio_ms=300)) as p:
        yield p


async def test_sigterm_refuses_new_sessions_then_ends_live_ones_after_the_drain_window(
    provider: MockProvider, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "r.toml", provider.url, tmp_path / "r.db", auth="none", drain=1.5
    )
    async with (
        serve_process("--config", str(config)) as (proc, port),
        aiohttp.ClientSession() as http,
    ):
        url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
        async with http.ws_connect(url) as ws:
            assert (await ws.receive_json())["type"] == "session.created"
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                assert resp.status == 503
            async with http.get(url.replace("ws:", "http:"), headers=upgrade_headers()) as resp:
                assert resp.status == 503
                assert (await resp.json())["error"]["code"] == "relay_shutting_down"
            # the live session still works during the drain window
            await ws.send_json({"type": "response.create"})
            while (await ws.receive_json())["type"] != "response.done":
                pass
            error, code, reason = await read_error_and_close(ws)
        assert error is not None
        assert error["error"]["code"] == "relay_shutting_down"
        assert (code, reason) == (1001, "server_error.relay_shutting_down")
        async with asyncio.timeout(20):
            assert await proc.wait() == 0


async def test_sigkill_mid_session_keeps_completed_responses_and_marks_it_interrupted(
    provider: MockProvider, tmp_path: Path
) -> None:
    db = tmp_path / "r.db"
    store = await open_store(f"sqlite+aiosqlite:///{db}")
    try:
        _, key = await store.create_key(KeySpec(name="crash"))
    finally:
        await store.close()
    config = write_config(tmp_path / "r.toml", provider.url, db, auth="keys", drain=1)
    async with (
        serve_process("--config", str(config)) as (proc, port),
        aiohttp.ClientSession() as http,
    ):
        url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
        ws = await http.ws_connect(url, headers={"Authorization": f"Bearer {key}"})
        await ws.receive_json()
        for _ in range(2):
            await ws.send_json({"type": "response.create"})
            while (await ws.receive_json())["type"] != "response.done":
                pass
        store = await open_store(f"sqlite+aiosqlite:///{db}", migrate=False)
        try:
            async with asyncio.timeout(10):
                while (await store.usage(by="key"))[0:1] == [] or (
                    (await store.usage(by="key"))[0].responses < 2
                ):
                    await asyncio.sleep(0.05)
        finally:
            await store.close()
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        await ws.close()
    async with serve_process("--config", str(config), port=port):
        store = await open_store(f"sqlite+aiosqlite:///{db}", migrate=False)
        try:
            [session] = await store.sessions()
            [usage] = await store.usage(by="key")
        finally:
            await store.close()
    assert session.status == "interrupted"
    assert usage.responses == 2
    assert usage.cost_usd > 0


def workers_of(master: int) -> list[psutil.Process]:
    """The live worker processes of a ``serve --workers`` master (not multiprocessing's tracker)."""
    workers = []
    for child in psutil.Process(master).children():
        try:
            if any("spawn_main" in part for part in child.cmdline()):
                workers.append(child)
        except psutil.Error:  # a dead worker not yet reaped
            continue
    return workers


def listens_on(process: psutil.Process, port: int) -> bool:
    try:
        connections = process.net_connections("inet")
    except psutil.NoSuchProcess:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


async def serving_workers(master: int, port: int, n: int) -> list[psutil.Process]:
    """Wait (bounded) until the master has ``n`` workers, each listening on ``port``."""
    async with asyncio.timeout(30):
        while True:
            workers = workers_of(master)
            if len(workers) == n and all(listens_on(w, port) for w in workers):
                return workers
            await asyncio.sleep(0.1)


async def gone(processes: list[psutil.Process], within: float) -> list[psutil.Process]:
    """The processes still alive after ``within`` seconds (zombies count as gone)."""
    alive = processes
    async with asyncio.timeout(within + 5):
        for _ in range(int(within / 0.05)):
            alive = [p for p in alive if _alive(p)]
            if not alive:
                break
            await asyncio.sleep(0.05)
    return alive


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_workers_exit_soon_after_their_master_is_killed(
    provider: MockProvider, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "r.toml", provider.url, tmp_path / "r.db", auth="none", drain=30
    )
    async with serve_process("--config", str(config), "--workers", "2") as (proc, port):
        workers = await serving_workers(proc.pid, port, 2)
        proc.kill()
        await proc.wait()
        # The promise is 2 s; the wait allows for a loaded machine.
        assert await gone(workers, within=5) == []
    assert not any(listens_on(w, port) for w in workers)


async def test_a_dead_worker_is_restarted_and_the_port_keeps_serving(
    provider: MockProvider, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "r.toml", provider.url, tmp_path / "r.db", auth="none", drain=1
    )
    async with (
        serve_process("--config", str(config), "--workers", "2") as (proc, port),
        aiohttp.ClientSession() as http,
    ):
        first = await serving_workers(proc.pid, port, 2)
        first[0].kill()
        assert await gone(first[:1], within=5) == []
        async with asyncio.timeout(30):
            while True:
                now = await serving_workers(proc.pid, port, 2)
                if first[0].pid not in {w.pid for w in now}:
                    break
                await asyncio.sleep(0.1)
        [new] = [w for w in now if w.pid != first[1].pid]
        assert listens_on(new, port)
        for _ in range(10):
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200
        url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
        async with http.ws_connect(url) as ws:
            assert (await ws.receive_json())["type"] == "session.created"
        assert proc.returncode is None
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await proc.wait() == 0
        assert await gone(now, within=5) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_sigterm_or_sigint_to_the_master_alone_drains_and_stops_every_worker(
    provider: MockProvider, tmp_path: Path, sig: signal.Signals
) -> None:
    config = write_config(
        tmp_path / "r.toml", provider.url, tmp_path / "r.db", auth="none", drain=1
    )
    async with (
        serve_process("--config", str(config), "--workers", "2") as (proc, port),
        aiohttp.ClientSession() as http,
    ):
        workers = await serving_workers(proc.pid, port, 2)
        tracker = [p for p in psutil.Process(proc.pid).children() if p not in workers]
        url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
        async with http.ws_connect(url) as ws:
            assert (await ws.receive_json())["type"] == "session.created"
            proc.send_signal(sig)  # to the master only, as kill(1) would (Ctrl-C signals all)
            # the live session is drained (told why), not cut
            error, code, _ = await read_error_and_close(ws)
        assert error is not None
        assert error["error"]["code"] == "relay_shutting_down"
        assert code == 1001
        async with asyncio.timeout(30):
            assert await proc.wait() == 0
        assert await gone([*workers, *tracker], within=5) == []
