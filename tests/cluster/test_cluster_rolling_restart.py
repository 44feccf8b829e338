"""A rolling restart: SIGTERM each relay host in turn, under load, and bring it back.

While a host drains, its ``/readyz`` says 503 and new handshakes get ``503
relay_shutting_down``, which nginx answers by trying the next relay (open-source nginx has
no active health checks: ``proxy_next_upstream`` on the refusal is what keeps clients off
a draining host). So through nginx no handshake fails at all, no session starts on a
draining host, live sessions there end with ``relay_shutting_down`` and 1001 after the
drain window, ``rtrelay.client`` reconnects to a live host, and every response is billed
exactly once.
"""

from __future__ import annotations

from ledger_checks import billed_once
from rig import ADDRESSES, LB_PORT, RELAY_PORT, RELAYS, Clients, Cluster, eventually

LB = f"ws://{ADDRESSES['lb']}:{LB_PORT}/v1"


async def test_rolling_restart_under_load(rig: Cluster, clients: Clients) -> None:
    key = rig.create_key("rolling")
    resilient = await clients.send("resilient", sid="r", url=LB, key=key)
    hammer = await clients.send("hammer", sid="h", url=LB, key=key)
    for host in RELAYS:
        assert (await clients.ask("open", sid=f"idle-{host}", url=LB, key=key))["ok"]
    await clients.wait_for(lambda m: m.get("sid") == "r" and "done" in m, count=2)

    for host in RELAYS:
        rig.stop_relay(host, wait=False)
        # Not ready while it drains (then nothing answers at all).
        assert eventually(
            lambda h=host: rig.http_status("lb", ADDRESSES[h], RELAY_PORT, "/readyz") in (503, None)
        )
        # From here on (a handshake admitted before the SIGTERM has long finished its dial),
        # no session may start there.
        since = rig.psql("SELECT now()")
        rig.wait_stopped(host)
        started_there = rig.psql(
            f"SELECT count(*) FROM rtrelay_sessions WHERE node LIKE '{host}:%' "
            f"AND started_at > '{since}'"
        )
        assert started_there == "0", f"{started_there} sessions started on draining {host}"
        rig.start_relay(host)

    await clients.ask("stop", sid="h")
    load = await hammer
    assert load["upgraded"] > 0 and load["failed"] == [], load
    idle = await clients.wait_for(
        lambda m: str(m.get("sid")).startswith("idle-") and "closed" in m, count=3
    )
    assert all(m["closed"] == 1001 and m["codes"] == ["relay_shutting_down"] for m in idle), idle
    await clients.ask("stop", sid="r")
    assert (await resilient)["ok"]
    done = [m["done"] for m in clients.reports if m.get("sid") == "r" and "done" in m]
    assert len(done) >= 4
    assert eventually(lambda: billed_once(rig, done) == []), billed_once(rig, done)
