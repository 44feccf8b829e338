"""The LiteLLM target: LiteLLM's proxy with its realtime route pointed at the simulated provider.

LiteLLM is installed on request into a virtual environment of its own
(``~/.cache/rtrelay-bench/litellm-venv``), never into rtrelay's. Its realtime route
(``/v1/realtime``) dials ``api_base`` with ``/v1/realtime?model=…`` appended, so the
simulated provider's HTTP base is all it needs. One uvicorn worker, no database: the
master key admits the sessions, as in LiteLLM's own quick start.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import aiohttp

from rtrelay.bench._procs import Child, ChildFailed, Children, free_port
from rtrelay.bench._target import MODEL, Target

__all__ = [
    "DEFAULT_VENV",
    "LiteLLMUnavailable",
    "ensure_litellm",
    "litellm_config",
    "start_litellm",
]

DEFAULT_VENV: Final = Path.home() / ".cache" / "rtrelay-bench" / "litellm-venv"
START_TIMEOUT: Final = 120.0
INSTALL_TIMEOUT: Final = 900.0
# A throw-away key for a proxy that only ever listens on 127.0.0.1 during the run.
_MASTER_KEY: Final = "sk-bench-litellm-master"


LITELLM_REQUIREMENT: Final = "litellm[proxy]==1.110.2"
"""Pinned: the bench runs a third party's code on this machine, so it takes a version chosen
on purpose, never whatever is newest (PyPI pulled LiteLLM's 1.107 releases)."""


class LiteLLMUnavailable(RuntimeError):
    """LiteLLM could not be installed or started; the benchmark skips it."""


def ensure_litellm(venv_dir: Path) -> Path:
    """The ``litellm`` executable, installing ``litellm[proxy]`` into ``venv_dir`` if needed.

    Raises:
        LiteLLMUnavailable: creating the environment or installing failed.
    """
    exe = venv_dir / "bin" / "litellm"
    stamp = venv_dir / "rtrelay-installed"
    if exe.exists() and stamp.exists() and stamp.read_text() == LITELLM_REQUIREMENT:
        return exe
    print(
        f"rtrelay bench: installing LiteLLM into {venv_dir} (pip install '{LITELLM_REQUIREMENT}')",
        file=sys.stderr,
    )
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
        subprocess.run(
            [str(venv_dir / "bin" / "pip"), "install", "-q", LITELLM_REQUIREMENT],
            check=True,
            timeout=INSTALL_TIMEOUT,
            stdout=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise LiteLLMUnavailable(f"cannot install {LITELLM_REQUIREMENT}: {exc}") from exc
    if not exe.exists():
        raise LiteLLMUnavailable(f"pip installed {LITELLM_REQUIREMENT} but {exe} is missing")
    stamp.write_text(LITELLM_REQUIREMENT)
    return exe


async def _wait_healthy(child: Child, url: str) -> None:
    """Poll LiteLLM's liveness endpoint: its log says nothing reliable about readiness."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while True:
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass  # not listening yet
            if not child.running:
                raise ChildFailed(f"litellm exited before it was ready:\n{child.log_tail()}")
            if loop.time() > deadline:
                raise ChildFailed(f"litellm not ready after {START_TIMEOUT:g} s")
            await asyncio.sleep(0.25)


def litellm_config(provider_base: str) -> str:
    """LiteLLM's config (JSON is YAML): one realtime model served by the simulated provider."""
    netloc = urlsplit(provider_base).netloc
    config = {
        "model_list": [
            {
                "model_name": MODEL,
                "litellm_params": {
                    "model": f"openai/{MODEL}",
                    "api_base": f"http://{netloc}",
                    "api_key": "sk-bench-provider",
                },
                "model_info": {"mode": "realtime"},
            }
        ],
        "general_settings": {"master_key": _MASTER_KEY},
        "litellm_settings": {"telemetry": False},
    }
    return json.dumps(config, indent=2)


async def start_litellm(
    children: Children, workdir: Path, provider_base: str, *, venv_dir: Path | None = None
) -> Target:
    """Install LiteLLM if needed and start its proxy in front of the provider.

    Raises:
        LiteLLMUnavailable: it could not be installed or did not start.
    """
    exe = await asyncio.to_thread(ensure_litellm, venv_dir or DEFAULT_VENV)
    config = workdir / "litellm.yaml"
    config.write_text(litellm_config(provider_base))
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RTRELAY_", "VIRTUAL_ENV"))},
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no network fetch at start
    }
    child = children.add(
        Child(
            "litellm",
            [
                str(exe),
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--num_workers",
                "1",
            ],
            log_path=workdir / "litellm.log",
            env=env,
        )
    )
    child.start()
    try:
        await _wait_healthy(child, f"http://127.0.0.1:{port}/health/liveliness")
    except ChildFailed as exc:
        raise LiteLLMUnavailable(str(exc)) from exc
    return Target(
        "litellm",
        f"ws://127.0.0.1:{port}/v1/realtime?model={MODEL}",
        {"Authorization": f"Bearer {_MASTER_KEY}"},
        pid=child.pid,
    )
