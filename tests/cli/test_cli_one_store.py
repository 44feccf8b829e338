"""``serve --demo`` and every store command share one default store, and each says which."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import aiohttp
import pytest

from support import Demo, demo_process

STORE_LINE = re.compile(r"store: (sqlite\+aiosqlite:///\S+?\.db)")


def default_store(cwd: Path) -> str:
    """The default store's URL as a command run in ``cwd`` names it: an absolute path."""
    return f"sqlite+aiosqlite:///{os.path.realpath(cwd)}/rtrelay.db"


def defaults_only() -> dict[str, str]:
    """This environment without any ``RTRELAY_*`` setting (the test session's mark stays)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RTRELAY_") or k == "RTRELAY_TEST_SESSION"
    }


async def rtrelay(*argv: str, cwd: Path, env: Mapping[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rtrelay.cli.main",
        *argv,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    """``rtrelay serve --demo`` run in ``tmp_path`` on defaults."""
    async with demo_process(cwd=tmp_path, env=defaults_only()) as running:
        yield running


async def test_a_key_made_beside_the_demo_opens_a_session_through_it(
    demo: Demo, tmp_path: Path
) -> None:
    port, log = demo.port, demo.log
    env = defaults_only()
    code, out, err = await rtrelay("keys", "create", "--name", "beside", cwd=tmp_path, env=env)
    assert code == 0, err
    secret = re.search(r"^\s+(rk_\S+)$", out, re.MULTILINE)  # the line with the secret alone
    assert secret is not None, out

    url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
    headers = {"Authorization": f"Bearer {secret.group(1)}"}
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers) as ws:
        assert (await ws.receive_json())["type"] == "session.created"

    # Both name the same store, as an absolute path.
    served = STORE_LINE.search(log.read_text())
    assert served is not None, log.read_text()
    expected = default_store(tmp_path)
    assert served.group(1) == expected
    assert f"store: {expected}" in err


async def test_every_store_command_says_which_store_on_stderr(tmp_path: Path) -> None:
    env = defaults_only()
    expected = f"store: {default_store(tmp_path)}"
    for argv in (
        ("db", "upgrade"),
        ("keys", "create", "--name", "a", "--json"),
        ("keys", "list", "--json"),
        ("keys", "rotate", "--json", "a"),
        ("usage", "--format", "json"),
    ):
        if argv[:2] == ("keys", "rotate"):
            _, listed, _ = await rtrelay("keys", "list", cwd=tmp_path, env=env)
            prefix = re.search(r"^key_\w+\s+([a-z0-9]{8})\s", listed, re.MULTILINE)
            assert prefix is not None
            argv = (*argv[:-1], prefix.group(1))
        code, out, err = await rtrelay(*argv, cwd=tmp_path, env=env)
        assert code == 0, (argv, err)
        assert expected in err.splitlines(), (argv, err)
        assert "store:" not in out  # stdout stays the command's output


async def test_a_store_password_is_masked_in_the_store_line(tmp_path: Path) -> None:
    env = {**defaults_only(), "RTRELAY_STORE_URL": "postgresql+asyncpg://u:pw9secret@127.0.0.1:1/x"}
    code, _, err = await rtrelay("keys", "list", cwd=tmp_path, env=env)
    assert code == 1
    assert "store: postgresql+asyncpg://u:***@127.0.0.1:1/x" in err
    assert "pw9secret" not in err
