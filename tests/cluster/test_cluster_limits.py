"""Limits hold across the three relay hosts, not per host: they live in Redis and PostgreSQL.

Every session goes through nginx, which spreads them over the hosts (round robin), so each
check also proves the sessions really were on different hosts (the ledger's node column).
"""

from __future__ import annotations

from ledger_checks import key_id, live_nodes, nodes
from rig import ADDRESSES, LB_PORT, RELAYS, Clients, Cluster, eventually

LB = f"ws://{ADDRESSES['lb']}:{LB_PORT}/v1"


async def test_max_sessions_is_one_limit_across_hosts(rig: Cluster, clients: Clients) -> None:
    secret = rig.create_key("five", "--max-sessions", "5")
    kid = key_id(rig, secret)
    for i in range(5):
        opened = await clients.ask("open", sid=f"s{i}", url=LB, key=secret)
        assert opened["ok"], opened
    hosts = eventually(lambda: sorted(set(live_nodes(rig, kid))) == list(RELAYS))
    assert hosts, live_nodes(rig, kid)  # on all three hosts
    sixth = await clients.ask("open", sid="s5", url=LB, key=secret)
    assert (sixth["status"], sixth["code"]) == (429, "concurrency_limit_exceeded")
    # Whichever host the next handshake lands on sees the slot the others freed.
    await clients.ask("close", sid="s0")
    await clients.wait_for(lambda r: r.get("sid") == "s0" and "closed" in r)
    again = await clients.ask("open", sid="s6", url=LB, key=secret)
    assert again["ok"], again
    for sid in ("s1", "s2", "s3", "s4", "s6"):
        await clients.ask("close", sid=sid)


async def test_sessions_per_minute_hold_across_hosts(rig: Cluster, clients: Clients) -> None:
    secret = rig.create_key("four-a-minute", "--sessions-per-minute", "4")
    kid = key_id(rig, secret)
    started = await clients.ask("handshakes", url=LB, key=secret, n=4)
    assert len(started["times"]) == 4, started
    assert eventually(lambda: len(set(nodes(rig, kid))) >= 2)  # several hosts, counted once
    fifth = await clients.ask("open", sid="r5", url=LB, key=secret)
    assert (fifth["status"], fifth["code"]) == (429, "rate_limit_exceeded")


async def test_budget_spent_through_one_host_refuses_on_another(
    rig: Cluster, clients: Clients
) -> None:
    secret = rig.create_key("tiny-budget", "--budget-usd", "0.000001")
    kid = key_id(rig, secret)
    for sid in ("a", "b"):
        opened = await clients.ask("open", sid=sid, url=LB, key=secret)
        assert opened["ok"], opened
    assert eventually(lambda: len(set(nodes(rig, kid))) == 2), "both sessions on one host"
    spent = await clients.ask("respond", sid="a")  # one response costs more than the budget
    assert spent["ok"], spent
    billed = f"SELECT count(*) FROM rtrelay_usage WHERE key_id = '{kid}'"
    assert eventually(lambda: rig.psql(billed) == "1"), rig.psql(billed)
    # The billing host published the spend over Redis as it billed it (gate/spend_feed.py):
    # the other host refuses at its very next response.create, long before it would reload
    # the key's spend from the ledger (10 s).
    answer = await clients.ask("respond", sid="b")
    assert (answer["ok"], answer["code"]) == (False, "insufficient_quota"), answer
    assert rig.psql(billed) == "1"
    for sid in ("a", "b"):
        await clients.ask("close", sid=sid)
