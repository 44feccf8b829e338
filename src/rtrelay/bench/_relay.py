"""The rtrelay targets: ``rtrelay serve`` as an operator would run it, and its core alone.

``rtrelay``: every feature on. Auth uses the key store with a real ``rk_`` key; the
SQLite ledger meters every response; the key carries concurrency, start-rate and
budget limits (set high enough never to refuse the benchmark, so the checks run
without changing the outcome). The secret lives only in this process's memory and
the handshake headers.

``rtrelay-core``: the same relay with ``auth.mode = "none"`` and ``store.ledger =
false``, so the run measures what admission and the ledger cost on top of the core.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Final

from rtrelay.bench._options import TargetName
from rtrelay.bench._procs import Child, Children
from rtrelay.bench._provider import START_TIMEOUT, rtrelay_argv
from rtrelay.bench._target import MODEL, Target
from rtrelay.ledger.keys import KeySpec
from rtrelay.ledger.store import open_store

__all__ = ["relay_config", "start_rtrelay", "store_path"]

PROVIDER_KEY_ENV: Final = "RTRELAY_BENCH_PROVIDER_KEY"
# The simulated provider accepts any key; this one only proves the relay sends its own.
_PROVIDER_KEY: Final = "sk-bench-provider"


def relay_config(store_url: str, provider_base: str, *, core: bool = False) -> str:
    """The TOML config of the benchmarked relay (JSON strings are valid TOML strings)."""
    return "\n".join(
        [
            "[server]",
            'host = "127.0.0.1"',
            "workers = 1",
            "[auth]",
            f"mode = {json.dumps('none' if core else 'keys')}",
            "[store]",
            f"url = {json.dumps(store_url)}",
            f"ledger = {json.dumps(not core)}",
            "[logging]",
            'level = "INFO"',
            'format = "json"',
            "[[channels]]",
            'name = "simulated"',
            'kind = "openai"',
            f"base_url = {json.dumps(provider_base)}",
            f"api_key_env = {json.dumps(PROVIDER_KEY_ENV)}",
            f"models = [{json.dumps(MODEL)}]",
            "",
        ]
    )


def store_path(workdir: Path, name: TargetName) -> Path:
    """The SQLite file a target's ledger lives in (the soak reads it back afterwards)."""
    return workdir / f"{name}.db"


async def start_rtrelay(
    children: Children, workdir: Path, provider_base: str, *, max_sessions: int, core: bool = False
) -> Target:
    """Create the store and a key, then start ``rtrelay serve`` on an ephemeral port.

    Args:
        max_sessions: the key's concurrency limit (kept above what the run opens).
        core: start ``rtrelay-core`` (no key, no ledger) instead.
    """
    name: TargetName = "rtrelay-core" if core else "rtrelay"
    store_url = f"sqlite+aiosqlite:///{store_path(workdir, name)}"
    headers: dict[str, str] = {}
    if not core:
        store = await open_store(store_url)
        try:
            _, secret = await store.create_key(
                KeySpec(
                    name="bench",
                    models=(MODEL,),
                    max_sessions=max_sessions,
                    sessions_per_minute=1_000_000,
                    budget_usd=Decimal(1_000_000),
                )
            )
        finally:
            await store.close()
        headers["Authorization"] = f"Bearer {secret}"
    config_path = workdir / f"{name}.toml"
    config_path.write_text(relay_config(store_url, provider_base, core=core))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTRELAY_")}
    env[PROVIDER_KEY_ENV] = _PROVIDER_KEY
    child = children.add(
        Child(
            name,
            rtrelay_argv("serve", "--config", str(config_path), "--port", "0"),
            log_path=workdir / f"{name}.log",
            env=env,
        )
    )
    child.start()
    match = await child.wait_for(r'"url":\s*"http://127\.0\.0\.1:(\d+)"', START_TIMEOUT)
    port = int(match.group(1))
    return Target(name, f"ws://127.0.0.1:{port}/v1/realtime?model={MODEL}", headers, pid=child.pid)
