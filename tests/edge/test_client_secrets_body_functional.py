"""``POST /v1/realtime/client_secrets``: the body README documents, and the default model.

An empty body used to mint a token whose session said ``"model": null``. A realtime
session's model now defaults to ``gpt-realtime`` as OpenAI's does, and the token is bound
to it: a client that will connect with another model names it when minting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from rtrelay.ledger.keys import KeySpec
from rtrelay.mock import MockOptions, MockProvider
from support import RunningRelay, mock_channel_settings, read_error_and_close, running_relay


@pytest.fixture
async def relay() -> AsyncIterator[tuple[RunningRelay, str]]:
    async with MockProvider(MockOptions(realtime_pacing=0)) as provider:
        async with running_relay(mock_channel_settings(provider.url)) as running:
            _, key = await running.relay.parts.store.create_key(KeySpec(name="server"))
            yield running, key


async def _mint(relay: RunningRelay, key: str, body: Any, path: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{relay.url}{path}", headers={"Authorization": f"Bearer {key}"}, json=body
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
        minted: dict[str, Any] = await resp.json()
        return minted


async def _connect(relay: RunningRelay, token: str, model: str) -> tuple[str, int | None]:
    """The first event's type, or the refusal's code and close code."""
    protocols = ("realtime", f"openai-insecure-api-key.{token}")
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(relay.realtime(model), protocols=protocols) as ws,
    ):
        first = await ws.receive_json()
        if first["type"] != "error":
            return first["type"], None
        _, code, _ = await read_error_and_close(ws)
        return first["error"]["code"], code


async def test_an_empty_body_mints_a_token_for_the_default_model(
    relay: tuple[RunningRelay, str],
) -> None:
    running, key = relay
    minted = await _mint(running, key, None, "/v1/realtime/client_secrets")
    assert minted["session"]["model"] == "gpt-realtime"
    assert await _connect(running, minted["value"], "gpt-realtime") == ("session.created", None)
    assert await _connect(running, minted["value"], "gpt-realtime-mini") == (
        "model_not_allowed",
        4403,
    )


async def test_the_documented_body_binds_the_token_to_its_model(
    relay: tuple[RunningRelay, str],
) -> None:
    running, key = relay
    body = {
        "expires_after": {"anchor": "created_at", "seconds": 600},
        "session": {"type": "realtime", "model": "gpt-realtime-mini"},
    }
    minted = await _mint(running, key, body, "/v1/realtime/client_secrets")
    assert minted["session"]["model"] == "gpt-realtime-mini"
    assert minted["value"].startswith("ek_")
    assert await _connect(running, minted["value"], "gpt-realtime-mini") == (
        "session.created",
        None,
    )


async def test_the_beta_endpoint_defaults_the_model_too(relay: tuple[RunningRelay, str]) -> None:
    running, key = relay
    minted = await _mint(running, key, {}, "/v1/realtime/sessions")
    assert minted["model"] == "gpt-realtime"
    assert minted["client_secret"]["value"].startswith("ek_")
