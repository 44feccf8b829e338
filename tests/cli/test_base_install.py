"""``pip install rtrelay`` without extras: every command starts, and the relay serves.

The package is installed from this checkout into a fresh virtualenv with its base
dependencies only (no ``dev``, no ``bench``), and run from there: the test's own
tools (aiohttp, psutil) stay in the test process.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from rtrelay.cli.main import COMMANDS
from support import Demo, demo_process

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv holding rtrelay and its base dependencies, nothing else."""
    venv = tmp_path_factory.mktemp("base") / "venv"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        env=isolated_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    print(f"base install: {time.monotonic() - started:.1f} s")
    return venv


def isolated_env() -> dict[str, str]:
    """This environment minus what would let the base venv see the dev venv's packages."""
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PIP_REQUIRE_VIRTUALENV"}
    return {
        k: v
        for k, v in os.environ.items()
        if k not in drop and (not k.startswith("RTRELAY_") or k == "RTRELAY_TEST_SESSION")
    }


def rtrelay(venv: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "rtrelay"), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=isolated_env(),
    )


def test_the_base_install_lacks_the_extras(base_venv: Path) -> None:
    done = subprocess.run(
        [str(base_venv / "bin" / "python"), "-c", "import psutil"],
        capture_output=True,
        env=isolated_env(),
        timeout=60,
    )
    assert done.returncode != 0  # else this file would prove nothing


def test_every_command_starts_on_the_base_install(base_venv: Path, tmp_path: Path) -> None:
    for command in ("--help", *(f"{c} --help" for c in COMMANDS)):
        done = rtrelay(base_venv, *command.split(), cwd=tmp_path)
        assert done.returncode == 0, (command, done.stderr)
    done = rtrelay(base_venv, "keys", "list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "store: " in done.stderr


def test_bench_says_which_extra_to_install_and_exits_2(base_venv: Path, tmp_path: Path) -> None:
    done = rtrelay(base_venv, "bench", "--quick", cwd=tmp_path)
    assert done.returncode == 2
    assert "pip install 'rtrelay[bench]'" in done.stderr
    assert "psutil" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "bench-results").exists()


@pytest.fixture
async def base_demo(base_venv: Path, tmp_path: Path) -> AsyncIterator[Demo]:
    """``rtrelay serve --demo`` from the base install (its log: ``demo.log``)."""
    command = (str(base_venv / "bin" / "rtrelay"),)
    async with demo_process(command, cwd=tmp_path, env=isolated_env()) as running:
        assert running.admin_token is not None  # made up: no admin token was set
        yield running


async def test_serve_demo_on_the_base_install_answers_health_and_a_session(
    base_demo: Demo,
) -> None:
    port, key = base_demo.port, base_demo.key
    url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            assert resp.status == 200
        async with http.ws_connect(url, headers={"Authorization": f"Bearer {key}"}) as ws:
            assert (await ws.receive_json())["type"] == "session.created"
            await ws.send_json({"type": "response.create"})
            async with asyncio.timeout(30):
                while (await ws.receive_json())["type"] != "response.done":
                    pass


async def test_serve_demo_on_the_base_install_serves_the_console_and_its_assets(
    base_demo: Demo,
) -> None:
    """Jinja2 is a base dependency and the templates and vendored assets are in the wheel."""
    port, token = base_demo.port, base_demo.admin_token
    base = f"http://127.0.0.1:{port}"
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(f"{base}/console/login") as resp:
            assert resp.status == 200
            html = await resp.text()
        for asset in ("console.css", "vendor/htmx-2.0.11/htmx.min.js"):
            async with http.get(f"{base}/console/static/{asset}") as resp:
                assert resp.status == 200, asset
                assert len(await resp.read()) > 1000
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert csrf is not None
        form = {"csrf_token": csrf.group(1), "token": token, "next": "/console/"}
        async with http.post(f"{base}/console/login", data=form) as resp:
            assert resp.status == 200  # signed in, redirected to the overview
            assert "Connection success" in await resp.text()
        async with http.get(f"{base}/") as resp:
            assert resp.status == 200
