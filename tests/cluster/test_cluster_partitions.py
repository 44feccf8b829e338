"""One relay host cut off from one peer, the rest of the cluster unaffected.

- From Redis (its packets dropped, so Redis calls time out): the relay applies ``[redis]
  on_error``. ``closed`` (relay1): a key with limits is refused with 503
  ``limits_unavailable`` and ``/readyz`` says so; a key without limits is served; nginx
  sends such handshakes on to a relay that can admit them; once the link is back, the
  relay admits limited keys again. ``open`` (relay3): the key is admitted on each worker's
  own limits (a ``max_sessions = 1`` key gets at most one session per worker) and
  ``/readyz`` stays 200.
- From PostgreSQL (its packets dropped): live sessions go on, their responses go to the
  ledger journal on the relay's disk, and into the database once it answers again, each
  exactly once.
- From the provider (the link down): a handshake straight to the relay is refused with
  ``upstream_unavailable`` or ``upstream_timeout`` (5xx); through nginx it is served by
  another relay.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ledger_checks import billed_once
from rig import (
    ADDRESSES,
    LB_PORT,
    ON_ERROR_OPEN,
    PG_PORT,
    REDIS_PORT,
    RELAY_PORT,
    Clients,
    Cluster,
    eventually,
)

LB = f"ws://{ADDRESSES['lb']}:{LB_PORT}/v1"


def direct(host: str) -> str:
    """``host`` straight from the client host (it has links to relay1 and relay3)."""
    return f"ws://{ADDRESSES[host]}:{RELAY_PORT}/v1"


DIRECT = direct("relay1")


async def test_cut_from_redis_applies_on_error(rig: Cluster, clients: Clients) -> None:
    limited = rig.create_key("limited", "--max-sessions", "10")
    unlimited = rig.create_key("unlimited")
    rig.cut("relay1", "data", port=REDIS_PORT)

    refused = await clients.ask("open", sid="l1", url=DIRECT, key=limited)
    assert (refused["status"], refused["code"]) == (503, "limits_unavailable"), refused
    assert rig.http_status("client", ADDRESSES["relay1"], RELAY_PORT, "/readyz") == 503
    served = await clients.ask("open", sid="u1", url=DIRECT, key=unlimited)
    assert served["ok"], served
    for i in range(3):  # nginx moves on from relay1's 503 to a relay that reaches Redis
        through = await clients.ask("open", sid=f"lb{i}", url=LB, key=limited)
        assert through["ok"], through

    rig.restore("relay1", "data")
    async with asyncio.timeout(30):  # Redis is probed again once a second
        while not (again := await clients.ask("open", sid="l2", url=DIRECT, key=limited))["ok"]:
            assert again["code"] == "limits_unavailable", again
            await asyncio.sleep(0.5)
    for sid in ("u1", "lb0", "lb1", "lb2", "l2"):
        await clients.ask("close", sid=sid)


async def test_cut_from_redis_with_on_error_open(rig: Cluster, clients: Clients) -> None:
    one = rig.create_key("one-at-a-time", "--max-sessions", "1")
    rig.cut(ON_ERROR_OPEN, "data", port=REDIS_PORT)
    answers = [
        await clients.ask("open", sid=f"o{i}", url=direct(ON_ERROR_OPEN), key=one) for i in range(4)
    ]
    admitted = [a for a in answers if a["ok"]]
    # On each worker's own limits: one session per worker at most, blind to the others.
    assert 1 <= len(admitted) <= 2, answers
    refused = {(a["status"], a["code"]) for a in answers if not a["ok"]}
    assert refused == {(429, "concurrency_limit_exceeded")}, answers
    assert rig.http_status("client", ADDRESSES[ON_ERROR_OPEN], RELAY_PORT, "/readyz") == 200
    rig.restore(ON_ERROR_OPEN, "data")
    for i in range(4):
        await clients.ask("close", sid=f"o{i}")


def journal_lines(rig: Cluster, host: str) -> int:
    files = Path(rig.workdir / host).glob("rtrelay-ledger-journal.jsonl*")
    return sum(f.read_bytes().count(b"\n") for f in files if not f.name.endswith(".rejected"))


async def test_cut_from_postgres_journals_then_replays(rig: Cluster, clients: Clients) -> None:
    key = rig.create_key("journaled")
    assert (await clients.ask("open", sid="p", url=DIRECT, key=key))["ok"]
    responses = [(await clients.ask("respond", sid="p"))["response"]]
    assert eventually(lambda: billed_once(rig, responses) == [])

    rig.cut("relay1", "data", port=PG_PORT)
    for _ in range(3):  # the session never waits for the database
        answer = await clients.ask("respond", sid="p")
        assert answer["ok"], answer
        responses.append(answer["response"])
    assert eventually(lambda: journal_lines(rig, "relay1") >= 3, timeout=60), rig.log("relay1")
    assert billed_once(rig, responses[1:]) == [(r, 0) for r in responses[1:]]

    rig.restore("relay1", "data")
    assert eventually(lambda: billed_once(rig, responses) == [], timeout=60), billed_once(
        rig, responses
    )
    assert eventually(lambda: journal_lines(rig, "relay1") == 0, timeout=30)
    await clients.ask("close", sid="p")


async def test_cut_from_the_provider(rig: Cluster, clients: Clients) -> None:
    key = rig.create_key("provider-cut")
    rig.cut("relay1", "provider")
    refused = await clients.ask("open", sid="d", url=DIRECT, key=key)
    assert refused["code"] in {"upstream_unavailable", "upstream_timeout"}, refused
    assert refused["status"] in {502, 503, 504}, refused
    for i in range(3):  # nginx moves on from relay1's refusal
        through = await clients.ask("open", sid=f"n{i}", url=LB, key=key)
        assert through["ok"], through
    rig.restore("relay1", "provider")
    async with asyncio.timeout(30):  # relay1's breaker may be cooling down
        while not (back := await clients.ask("open", sid="d2", url=DIRECT, key=key))["ok"]:
            await asyncio.sleep(0.5)
    assert back["ok"]
    for sid in ("n0", "n1", "n2", "d2"):
        await clients.ask("close", sid=sid)
