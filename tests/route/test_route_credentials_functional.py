"""A channel's provider key variable unset or empty: ``rtrelay serve`` refuses to start (exit 2).

Otherwise the provider refuses every session with 401 and clients are told that *their*
key is invalid. The key is read once at start-up; ``mock`` channels need none.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rtrelay import config
from rtrelay.config import ConfigError, channel_credentials
from rtrelay.edge.app import create_app
from support import free_port, serve_process, settings_for

VAR = "RTRELAY_TEST_UPSTREAM_KEY"


def write_config(path: Path, *, kind: str = "openai") -> Path:
    path.write_text(
        f"""
[auth]
mode = "none"
[store]
url = "sqlite+aiosqlite:///{path.parent / "r.db"}"
[logging]
level = "WARNING"
[[channels]]
name = "openai-main"
kind = "{kind}"
base_url = "ws://127.0.0.1:9/v1"
api_key_env = "{VAR}"
models = ["gpt-realtime"]
"""
    )
    return path


def serve(config_path: Path, value: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != VAR}
    if value is not None:
        env[VAR] = value
    command = [sys.executable, "-m", "rtrelay.cli.main", "serve", "--config", str(config_path)]
    return subprocess.run(
        [*command, "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "is not set"),
        ("", "is empty"),
        ("   ", "is empty"),
        ("sk-live-0123456789\n", "whitespace or a control character"),
    ],
    ids=["unset", "empty", "blank", "trailing-newline"],
)
def test_serve_refuses_to_start_naming_the_channel_and_the_variable(
    tmp_path: Path, value: str | None, problem: str
) -> None:
    done = serve(write_config(tmp_path / "r.toml"), value)
    assert done.returncode == 2, done.stderr
    assert "'openai-main'" in done.stderr and VAR in done.stderr and problem in done.stderr
    assert "Traceback" not in done.stderr
    if value and value.strip():
        assert value.strip() not in done.stderr  # the message never shows the value


async def test_a_mock_channel_needs_no_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != VAR}
    config_path = write_config(tmp_path / "r.toml", kind="mock")
    async with serve_process("--config", str(config_path), env=env) as (proc, _):
        assert proc.returncode is None  # it started, and answers /healthz


async def test_the_app_itself_refuses_to_build_without_the_key() -> None:
    settings = settings_for(
        channels=[
            {
                "name": "openai-main",
                "kind": "openai",
                "base_url": "ws://127.0.0.1:9/v1",
                "api_key_env": VAR,
                "models": ["gpt-realtime"],
            }
        ]
    )
    for environ in ({}, {VAR: ""}):
        with pytest.raises(ConfigError, match=f"'openai-main'.*{VAR}"):
            await create_app(settings, environ=environ)


def test_keys_are_read_once_into_each_channels_credential() -> None:
    channels = [
        config.Channel(name="a", api_key_env="A_KEY", models={"m": "m"}),
        config.Channel(name="b", models={"m": "m"}),  # names no variable: sends no key
        config.Channel(name="sim", kind="mock", api_key_env="UNSET", models={"m": "m"}),
    ]
    environ = {"A_KEY": "sk-a"}
    assert channel_credentials(channels, environ) == {"a": "sk-a"}
