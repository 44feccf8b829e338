"""Azure channels and model mapping through the real relay, SDK clients and simulated provider.

Clients connect with the ``openai`` SDK (Azure and OpenAI flavours) to rtrelay's
Azure-form aliases and to ``/v1/realtime``; the simulated provider records what each
upstream handshake looked like.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from openai import AsyncAzureOpenAI, AsyncOpenAI
from route_helpers import AZURE_KEY, first_event, make_key, origin_of, session_rows

from rtrelay.mock import MockOptions, MockProvider
from support import RunningRelay, running_relay, settings_for

PREVIEW = "2025-04-01-preview"


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    async with MockProvider(MockOptions(realtime_pacing=0, reply_audio_ms=200)) as p:
        yield p


@pytest.fixture
async def relay(provider: MockProvider) -> AsyncIterator[RunningRelay]:
    """Two Azure channels on one resource: preview form for one model, GA for the other."""
    settings = settings_for(
        channels=[
            {
                "name": "az-preview",
                "kind": "azure",
                "base_url": origin_of(provider),
                "api_version": PREVIEW,
                "auth": "api-key",
                "api_key_env": "AZ_KEY",
                "models": {"gpt-realtime": "my-rt-prod"},
            },
            {
                "name": "az-ga",
                "kind": "azure",
                "base_url": origin_of(provider),
                "auth": "api-key",
                "api_key_env": "AZ_KEY",
                "models": {"gpt-realtime-mini": "my-mini-dep"},
            },
        ],
        auth={"mode": "keys"},
    )
    async with running_relay(settings, environ={"AZ_KEY": AZURE_KEY}) as r:
        yield r


def assert_azure_handshake(
    provider: MockProvider, path: str, query: dict[str, str], client_key: str
) -> None:
    [handshake] = provider.handshakes
    assert handshake.path == path
    assert handshake.query == query
    assert handshake.headers["api-key"] == AZURE_KEY
    assert "Authorization" not in handshake.headers
    assert client_key not in str(handshake.headers)  # the client's rtrelay key stays here


async def one_turn(connection: Any) -> tuple[Any, Any]:
    """session.created, then a response to completion; returns both events."""
    created = await connection.recv()
    assert created.type == "session.created"
    await connection.response.create()
    async for event in connection:
        if event.type == "response.done":
            return created, event
    raise AssertionError("the stream ended before response.done")


async def test_azure_sdk_on_the_preview_alias_reaches_the_preview_deployment(
    relay: RunningRelay, provider: MockProvider
) -> None:
    key = await make_key(relay)
    client = AsyncAzureOpenAI(
        api_key=key,  # sent as the api-key header: rtrelay takes it as its own key
        api_version="2024-10-01-preview",  # the client's version; the channel's is what goes up
        azure_endpoint=relay.url,
        websocket_base_url=relay.ws_url + "/openai",
    )
    async with client.realtime.connect(model="gpt-realtime") as connection:
        created, done = await one_turn(connection)
    assert done.response.status == "completed"
    assert created.session.model == "my-rt-prod"  # what the provider says it runs
    assert_azure_handshake(
        provider, "/openai/realtime", {"api-version": PREVIEW, "deployment": "my-rt-prod"}, key
    )
    [row] = await session_rows(relay)
    assert (row.model, row.channel) == ("gpt-realtime", "az-preview")  # the public name


async def test_azure_sdk_on_the_v1_alias_reaches_the_ga_form(
    relay: RunningRelay, provider: MockProvider
) -> None:
    key = await make_key(relay)
    client = AsyncAzureOpenAI(
        api_key=key,
        api_version=PREVIEW,
        azure_endpoint=relay.url,
        websocket_base_url=relay.ws_url + "/openai/v1",
    )
    async with client.realtime.connect(model="gpt-realtime-mini") as connection:
        created, done = await one_turn(connection)
    assert done.response.status == "completed"
    assert created.session.model == "my-mini-dep"
    assert created.session.type == "realtime"  # Azure's GA form speaks the GA shape
    assert_azure_handshake(provider, "/openai/v1/realtime", {"model": "my-mini-dep"}, key)
    [row] = await session_rows(relay)
    assert (row.model, row.channel) == ("gpt-realtime-mini", "az-ga")


async def test_openai_sdk_on_the_ga_alias_and_on_v1_realtime(
    relay: RunningRelay, provider: MockProvider
) -> None:
    key = await make_key(relay)
    for base, model in [("/openai/v1", "gpt-realtime-mini"), ("/v1", "gpt-realtime")]:
        client = AsyncOpenAI(api_key=key, websocket_base_url=relay.ws_url + base)
        async with client.realtime.connect(model=model) as connection:
            _created, done = await one_turn(connection)
        assert done.response.status == "completed"
    mini, rt = provider.handshakes
    assert (mini.path, mini.query) == ("/openai/v1/realtime", {"model": "my-mini-dep"})
    assert (rt.path, rt.query) == (
        "/openai/realtime",
        {"api-version": PREVIEW, "deployment": "my-rt-prod"},
    )
    for handshake in (mini, rt):
        assert handshake.headers["api-key"] == AZURE_KEY
        assert "Authorization" not in handshake.headers
    rows = await session_rows(relay)
    assert sorted((r.model, r.channel) for r in rows) == [
        ("gpt-realtime", "az-preview"),
        ("gpt-realtime-mini", "az-ga"),
    ]


async def test_raw_client_with_api_key_header_on_the_ga_alias(
    relay: RunningRelay, provider: MockProvider
) -> None:
    key = await make_key(relay)
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            relay.ws_url + "/openai/v1/realtime?model=gpt-realtime-mini",
            headers={"api-key": key},
        ) as ws,
    ):
        created = await first_event(ws)
    assert created["type"] == "session.created"
    assert created["session"]["model"] == "my-mini-dep"
    assert_azure_handshake(provider, "/openai/v1/realtime", {"model": "my-mini-dep"}, key)


async def test_a_wrong_api_key_header_is_refused_before_any_dial(
    relay: RunningRelay, provider: MockProvider
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            relay.url + f"/openai/realtime?api-version={PREVIEW}&deployment=gpt-realtime",
            headers={
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "api-key": "rk_not_a_real_key_000000",
            },
        ) as resp,
    ):
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "invalid_api_key"
    assert provider.handshakes == []


async def test_bearer_auth_channel_and_a_public_name_mapped_on_an_openai_channel() -> None:
    async with MockProvider(MockOptions(realtime_pacing=0)) as provider:
        settings = settings_for(
            channels=[
                {
                    "name": "az-entra",
                    "kind": "azure",
                    "base_url": origin_of(provider),
                    "auth": "bearer",
                    "api_key_env": "AZ_TOKEN",
                    "models": {"gpt-realtime": "rt-entra"},
                },
                {
                    "name": "oa",
                    "kind": "openai",
                    "base_url": provider.url,
                    "api_key_env": "TEST_PROVIDER_KEY",
                    "models": {"voice-default": "gpt-realtime-2025-08-28"},
                },
            ]
        )
        async with (
            running_relay(settings, environ={"AZ_TOKEN": "entra-token-xyz"}) as relay,
            aiohttp.ClientSession() as http,
        ):
            for model in ("gpt-realtime", "voice-default"):
                async with http.ws_connect(relay.realtime(model)) as ws:
                    assert (await first_event(ws))["type"] == "session.created"
        entra, oa = provider.handshakes
        assert (entra.path, entra.query) == ("/openai/v1/realtime", {"model": "rt-entra"})
        assert entra.headers["Authorization"] == "Bearer entra-token-xyz"
        assert "api-key" not in entra.headers
        assert (oa.path, oa.query) == ("/v1/realtime", {"model": "gpt-realtime-2025-08-28"})
