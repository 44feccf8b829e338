"""A relay host dies (SIGKILL of all its processes) in the middle of sessions.

Its clients see the drop, and only its clients; ``rtrelay.client`` reconnects through
nginx to a live host and goes on; the dead host's leases expire within their TTL, so the
key's concurrency comes back without anyone cleaning up; every response a client saw
complete is in the ledger exactly once. The host then comes back, marks its dead
sessions interrupted (its own only: the node column names the host), and serves again.
"""

from __future__ import annotations

import asyncio
import time

from ledger_checks import billed_once, key_id, live_nodes, nodes
from rig import ADDRESSES, LB_PORT, LEASE_TTL, RELAYS, Clients, Cluster, eventually

LB = f"ws://{ADDRESSES['lb']}:{LB_PORT}/v1"


async def test_a_host_dies_mid_session(rig: Cluster, clients: Clients) -> None:
    resilient_key = rig.create_key("resilient")
    three = rig.create_key("three", "--max-sessions", "3")
    resilient = await clients.send("resilient", sid="r", url=LB, key=resilient_key)
    await clients.wait_for(lambda m: m.get("sid") == "r" and "done" in m, count=2)
    (victim,) = eventually(lambda: live_nodes(rig, key_id(rig, resilient_key)))
    for i in range(3):
        assert (await clients.ask("open", sid=f"t{i}", url=LB, key=three))["ok"]
    assert eventually(lambda: sorted(live_nodes(rig, key_id(rig, three))) == list(RELAYS))

    before = [m["done"] for m in clients.reports if m.get("sid") == "r" and "done" in m]
    killed_at = time.monotonic()
    rig.kill_host(victim)

    # Its clients see the drop: exactly the one session of "three" that it held.
    (drop,) = await clients.wait_for(lambda m: str(m.get("sid")).startswith("t") and "closed" in m)
    assert drop["closed"] == 1006, drop  # no close frame: nginx lost its upstream
    await asyncio.sleep(0.5)
    assert [m for m in clients.reports if str(m.get("sid")).startswith("t")] == [drop]

    # The dead host's lease of "three" expires by itself: a third session is admitted again.
    recovered = None
    async with asyncio.timeout(LEASE_TTL * 4 + 20):
        while recovered is None:
            opened = await clients.ask("open", sid="t-again", url=LB, key=three)
            if opened["ok"]:
                recovered = time.monotonic() - killed_at
            else:
                assert opened["code"] == "concurrency_limit_exceeded", opened
                await asyncio.sleep(0.2)
    print(f"leases recovered {recovered:.2f} s after the kill (TTL {LEASE_TTL} s)")

    # The resilient client reconnects through nginx (to a live host) and goes on.
    finished = len(before)
    await clients.wait_for(lambda m: m.get("sid") == "r" and "done" in m, count=finished + 3)
    states = [m["state"] for m in clients.reports if m.get("sid") == "r" and "state" in m]
    assert states.count("OPEN") >= 2, states  # open, dropped, open again
    hosts = eventually(lambda: len(seen := nodes(rig, key_id(rig, resilient_key))) > 1 and seen)
    assert hosts and hosts[0] == victim and victim not in hosts[1:], hosts

    await clients.ask("stop", sid="r")
    async with asyncio.timeout(30):
        assert (await resilient)["ok"]
    done = [m["done"] for m in clients.reports if m.get("sid") == "r" and "done" in m]
    assert eventually(lambda: billed_once(rig, done) == []), billed_once(rig, done)

    # The host comes back: its sessions that died with it are marked interrupted.
    rig.start_relay(victim)
    stuck = (
        f"SELECT count(*) FROM rtrelay_sessions WHERE node LIKE '{victim}:%' AND status = 'live'"
    )
    assert eventually(lambda: rig.psql(stuck) == "0"), rig.psql(stuck)
    for sid in ("t0", "t1", "t2", "t-again"):
        await clients.ask("close", sid=sid)
