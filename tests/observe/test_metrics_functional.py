"""/metrics moves by exactly what happened, and aggregates across worker processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rtrelay.ledger.keys import KeySpec
from rtrelay.mock import MockOptions, MockProvider
from support import (
    free_port,
    read_error_and_close,
    running_relay,
    serve_process,
    settings_for,
    upgrade_headers,
)


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    async with MockProvider(MockOptions(realtime_pacing=0, reply_audio_ms=300)) as p:
        yield p


async def test_counters_move_by_exactly_what_happened(provider: MockProvider) -> None:
    settings = settings_for(
        channels=[
            {
                "name": "sim",
                "kind": "openai",
                "base_url": provider.url,
                "models": ["gpt-realtime"],
            },
            {
                "name": "dead",
                "kind": "openai",
                "base_url": f"ws://127.0.0.1:{free_port()}/v1",
                "models": ["gpt-realtime-mini"],
            },
        ],
        auth={"mode": "keys"},
    )
    truth = {"success": 0}
    async with running_relay(settings) as relay, aiohttp.ClientSession() as http:
        _, key = await relay.relay.parts.store.create_key(KeySpec(name="m"))
        auth = {"Authorization": f"Bearer {key}"}

        async def attempt(model: str = "gpt-realtime", **headers: str) -> str:
            async with http.get(relay.realtime(model), headers=upgrade_headers(**headers)) as resp:
                if resp.status == 101:
                    return "success"
                code: str = (await resp.json())["error"]["code"]
                return code

        for outcome in (
            await attempt(),  # missing_api_key
            await attempt(Authorization="Bearer rk_wrong_key1"),  # invalid_api_key
            await attempt("nope", **auth),  # model_not_found
            await attempt("gpt-realtime-mini", **auth),  # upstream_unavailable
        ):
            truth[outcome] = truth.get(outcome, 0) + 1
        # two full sessions with a response each
        for _ in range(2):
            async with http.ws_connect(relay.realtime(), headers=auth) as ws:
                await ws.receive_json()
                await ws.send_json({"type": "response.create"})
                while (await ws.receive_json())["type"] != "response.done":
                    pass
            truth["success"] += 1
        # one session the provider drops mid-way
        provider.options = MockOptions(realtime_pacing=0, drop_after_events=1)
        async with http.ws_connect(relay.realtime(), headers=auth) as ws:
            _, code, _ = await read_error_and_close(ws)
            assert code == 1011
        truth["success"] += 1
        async with asyncio.timeout(10):
            while relay.relay.sessions:
                await asyncio.sleep(0.01)
        async with http.get(f"{relay.url}/metrics") as resp:
            assert resp.status == 200
            samples = scrape(await resp.text())

    assert truth == {
        "success": 3,
        "missing_api_key": 1,
        "invalid_api_key": 1,
        "model_not_found": 1,
        "upstream_unavailable": 1,
    }
    for outcome, count in truth.items():
        assert value(samples, "rtrelay_handshakes_total", outcome=outcome) == count, outcome
    attempts = sum(v for (n, _), v in samples.items() if n == "rtrelay_handshakes_total")
    successes = value(samples, "rtrelay_handshakes_total", outcome="success")
    assert successes / attempts == pytest.approx(3 / 7)
    assert value(samples, "rtrelay_handshakes_total", outcome="upstream_timeout") == 0  # exported
    assert value(samples, "rtrelay_active_sessions") == 0
    assert value(samples, "rtrelay_session_duration_seconds_count") == 3
    assert value(samples, "rtrelay_upstream_dial_seconds_count", channel="sim") == 3
    assert (
        value(samples, "rtrelay_upstream_dial_failures_total", channel="dead", outcome="connect")
        == 1
    )
    assert value(samples, "rtrelay_session_errors_total", code="upstream_disconnected") == 1
    assert value(samples, "rtrelay_close_codes_total", side="client", code="1011") == 1
    assert value(samples, "rtrelay_first_event_seconds_count") == 3
    assert value(samples, "rtrelay_frames_total", direction="upstream_to_client") > 10
    assert value(samples, "rtrelay_frames_total", direction="client_to_upstream") == 2
    assert value(samples, "rtrelay_relay_added_seconds_count") >= 3
    assert value(samples, "rtrelay_tokens_total", model="gpt-realtime", modality="audio_out") > 0
    assert value(samples, "rtrelay_cost_usd_total", model="gpt-realtime") > 0
    assert value(samples, "rtrelay_channel_circuit_state", channel="sim") == 0


async def test_metrics_aggregate_across_two_worker_processes(
    provider: MockProvider, tmp_path: Path
) -> None:
    config = tmp_path / "r.toml"
    config.write_text(
        f"""
[auth]
mode = "none"
[store]
url = "sqlite+aiosqlite:///{tmp_path / "r.db"}"
[logging]
level = "WARNING"
[[channels]]
name = "sim"
kind = "openai"
base_url = "{provider.url}"
models = ["gpt-realtime"]
"""
    )
    env_dir = tmp_path / "prom"
    env_dir.mkdir()
    async with serve_process(
        "--config", str(config), "--workers", "2", env={"PROMETHEUS_MULTIPROC_DIR": str(env_dir)}
    ) as (_, port):
        url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
        async with asyncio.timeout(60):
            pids: set[int] = set()
            sessions = 0
            # keep opening sessions until both workers have served some
            while len(provider.sessions) < 12 or len(pids) < 2:
                async with aiohttp.ClientSession() as http:
                    async with http.ws_connect(url) as ws:
                        await ws.receive_json()
                        sessions += 1
                    async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                        pids.add(int(resp.headers["X-Rtrelay-Worker"]))
            await asyncio.sleep(0.3)
            for _ in range(6):  # every scrape, whichever worker answers, sees the sum
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(f"http://127.0.0.1:{port}/metrics") as resp,
                ):
                    samples = scrape(await resp.text())
                assert value(samples, "rtrelay_handshakes_total", outcome="success") == sessions
        assert len(pids) == 2
