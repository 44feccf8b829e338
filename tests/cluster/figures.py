"""The figures of docs/cluster.md, measured on a fresh cluster (``scripts/cluster-figures``).

- sessions per host: ``SESSIONS`` sessions opened through nginx and held, each asking for
  one response; how many the ledger has on each host;
- handshake time to the 101, ``HANDSHAKES`` one after another, through nginx and straight
  to one relay (the difference is what the load balancer hop costs);
- lease recovery: a host holding one of a ``max_sessions`` key's sessions is SIGKILLed;
  seconds until the key is admitted again (``REPEATS`` times, with ``[redis] lease_ttl``);
- ledger rows vs completed responses: every response a client saw complete during the
  above (hosts dying included), and how many usage rows the ledger has for them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from ledger_checks import billed_once, key_id, live_nodes
from rig import (
    ADDRESSES,
    LB_PORT,
    LEASE_TTL,
    RELAY_PORT,
    RELAYS,
    Clients,
    Cluster,
    cluster,
    eventually,
)

SESSIONS = 30
HANDSHAKES = 200
REPEATS = 3
PROVIDER_OPTIONS = ("--pacing", "1.0", "--reply-audio-ms", "600")
LB = f"ws://{ADDRESSES['lb']}:{LB_PORT}/v1"
DIRECT = f"ws://{ADDRESSES['relay1']}:{RELAY_PORT}/v1"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def sessions_per_host(rig: Cluster, clients: Clients, done: list[str]) -> dict[str, int]:
    key = rig.create_key("figures-load")
    for i in range(SESSIONS):
        assert (await clients.ask("open", sid=f"load{i}", url=LB, key=key))["ok"]
    answers = await asyncio.gather(
        *(clients.ask("respond", sid=f"load{i}") for i in range(SESSIONS))
    )
    done += [a["response"] for a in answers if a["ok"]]
    kid = key_id(rig, key)
    eventually(lambda: len(live_nodes(rig, kid)) == SESSIONS)
    hosts = live_nodes(rig, kid)
    for i in range(SESSIONS):
        await clients.ask("close", sid=f"load{i}")
    return {host: hosts.count(host) for host in RELAYS}


async def handshakes(rig: Cluster, clients: Clients) -> dict[str, list[float]]:
    key = rig.create_key("figures-handshakes")
    times = {}
    for name, url in (("nginx", LB), ("direct", DIRECT), ("nginx again", LB)):
        answer = await clients.ask("handshakes", url=url, key=key, n=HANDSHAKES, timeout=600)
        assert not answer["refused"], answer
        times[name] = answer["times"]
    times["nginx"] += times.pop("nginx again")  # before and after the direct run: fair
    return times


async def lease_recovery(rig: Cluster, clients: Clients, done: list[str]) -> list[float]:
    recoveries = []
    resilient_key = rig.create_key("figures-resilient")
    resilient = await clients.send("resilient", sid="r", url=LB, key=resilient_key)
    for repeat in range(REPEATS):
        key = rig.create_key(f"figures-three-{repeat}", "--max-sessions", "3")
        sids = [f"t{repeat}-{i}" for i in range(3)]
        for sid in sids:
            assert (await clients.ask("open", sid=sid, url=LB, key=key))["ok"]
        kid = key_id(rig, key)
        eventually(lambda kid=kid: len(live_nodes(rig, kid)) == 3)
        victim = RELAYS[repeat % len(RELAYS)]
        killed = time.monotonic()
        rig.kill_host(victim)
        while not (await clients.ask("open", sid=f"again{repeat}", url=LB, key=key))["ok"]:
            await asyncio.sleep(0.05)
        recoveries.append(time.monotonic() - killed)
        for sid in (*sids, f"again{repeat}"):
            await clients.ask("close", sid=sid)
        rig.start_relay(victim)
    await clients.ask("stop", sid="r")
    await resilient
    done += [m["done"] for m in clients.reports if m.get("sid") == "r" and "done" in m]
    return recoveries


async def measure(rig: Cluster) -> str:
    clients = await Clients.start(rig)
    done: list[str] = []
    try:
        per_host = await sessions_per_host(rig, clients, done)
        times = await handshakes(rig, clients)
        recoveries = await lease_recovery(rig, clients, done)
    finally:
        await clients.close()
    wrong = eventually(lambda: billed_once(rig, done) == []) or billed_once(rig, done)
    rows = int(
        rig.psql(
            "SELECT count(*) FROM rtrelay_usage WHERE ref IN ("
            + ",".join(f"'{r}'" for r in done)
            + ")"
        )
    )
    ms = {name: [t * 1000 for t in values] for name, values in times.items()}
    lines = [
        f"sessions per host ({SESSIONS} through nginx): "
        + ", ".join(f"{host} {n}" for host, n in per_host.items()),
        *(
            f"handshake to 101 {name} ({len(v)}): p50 {statistics.median(v):.1f} ms, "
            f"p99 {percentile(v, 0.99):.1f} ms"
            for name, v in ms.items()
        ),
        f"lease recovery after a host death (lease_ttl {LEASE_TTL:g} s, {REPEATS} kills): "
        + ", ".join(f"{r:.2f}" for r in recoveries)
        + " s",
        f"ledger: {len(done)} responses completed, {rows} usage rows for them"
        + ("" if wrong is True else f"; not exactly once: {wrong}"),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    with cluster(provider_options=PROVIDER_OPTIONS) as rig:
        print(asyncio.run(measure(rig)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
