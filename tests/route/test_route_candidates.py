"""Channel order for a model: priority first, then weighted random; model and shape checks."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from rtrelay.config import Channel
from rtrelay.errors import BetaNotSupportedByChannel, ModelNotFound
from rtrelay.route.dial import Dialer
from rtrelay.route.router import Router


def channel(name: str, **fields: Any) -> Channel:
    fields.setdefault("models", {"gpt-realtime": "gpt-realtime"})
    return Channel(name=name, base_url="ws://127.0.0.1:9/v1", **fields)


def router(*channels: Channel, seed: int = 1) -> Router:
    # candidates() never dials, so the dialer is never started.
    dialer = Dialer(max_frame_bytes=1 << 20, heartbeat=None)
    return Router(channels, dialer, rng=random.Random(seed), environ={})


def first_picks(r: Router, rounds: int, *, beta: bool = False) -> Counter[str]:
    return Counter(r.candidates("gpt-realtime", beta=beta)[0].name for _ in range(rounds))


def test_weights_three_to_one_give_about_three_quarters_of_first_picks() -> None:
    r = router(channel("heavy", weight=3), channel("light", weight=1), seed=42)
    picks = first_picks(r, 4000)
    assert 0.70 < picks["heavy"] / 4000 < 0.80
    assert picks["heavy"] + picks["light"] == 4000


def test_equal_weights_split_evenly_and_every_order_lists_all_channels() -> None:
    r = router(channel("a"), channel("b"), channel("c"), seed=3)
    orders = [tuple(c.name for c in r.candidates("gpt-realtime", beta=False)) for _ in range(3000)]
    assert all(sorted(o) == ["a", "b", "c"] for o in orders)
    firsts = Counter(o[0] for o in orders)
    assert all(800 < firsts[n] < 1200 for n in "abc")


def test_lower_priority_number_is_always_tried_first() -> None:
    r = router(
        channel("backup", priority=5, weight=100),
        channel("main-1", priority=0, weight=1),
        channel("main-2", priority=0, weight=1),
        channel("last", priority=9, weight=100),
        seed=11,
    )
    for _ in range(500):
        names = [c.name for c in r.candidates("gpt-realtime", beta=False)]
        assert sorted(names[:2]) == ["main-1", "main-2"]
        assert names[2:] == ["backup", "last"]


def test_only_channels_serving_the_model_are_candidates() -> None:
    r = router(
        channel("rt", models={"gpt-realtime": "gpt-realtime"}),
        channel("mini", models={"gpt-realtime-mini": "gpt-realtime-mini"}),
    )
    assert [c.name for c in r.candidates("gpt-realtime-mini", beta=False)] == ["mini"]
    with pytest.raises(ModelNotFound) as raised:
        r.candidates("whisper", beta=False)
    assert (raised.value.http_status, raised.value.param) == (404, "model")


def test_beta_clients_only_get_beta_capable_channels() -> None:
    r = router(
        channel("ga-only", shapes=("ga",), priority=0),
        channel("both", shapes=("ga", "beta"), priority=1),
    )
    assert [c.name for c in r.candidates("gpt-realtime", beta=False)] == ["ga-only", "both"]
    assert [c.name for c in r.candidates("gpt-realtime", beta=True)] == ["both"]
    ga = router(channel("ga-only", shapes=("ga",)))
    with pytest.raises(BetaNotSupportedByChannel) as raised:
        ga.candidates("gpt-realtime", beta=True)
    assert (raised.value.http_status, raised.value.close_code) == (400, 4400)


def test_ga_clients_never_get_beta_only_channels() -> None:
    r = router(
        channel("beta-only", shapes=("beta",), priority=0),
        channel("ga-only", shapes=("ga",), priority=1),
    )
    assert [c.name for c in r.candidates("gpt-realtime", beta=False)] == ["ga-only"]
    assert [c.name for c in r.candidates("gpt-realtime", beta=True)] == ["beta-only"]
    beta = router(channel("beta-only", shapes=("beta",)))
    with pytest.raises(ModelNotFound, match="only the beta shape") as raised:
        beta.candidates("gpt-realtime", beta=False)
    assert (raised.value.http_status, raised.value.close_code) == (404, 4404)
