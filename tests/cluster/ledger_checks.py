"""What the cluster tests read from the ledger (the data host's PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence

from rig import Cluster

__all__ = ["billed_once", "key_id", "live_nodes", "nodes"]


def key_id(rig: Cluster, secret: str) -> str:
    prefix = secret.split("_")[1]  # rk_<prefix>_<secret>
    return rig.psql(f"SELECT id FROM rtrelay_api_keys WHERE prefix = '{prefix}'")


def nodes(rig: Cluster, key: str) -> list[str]:
    """The host of each session of ``key``, oldest first (the node column is ``host:port``)."""
    out = rig.psql(
        f"SELECT node FROM rtrelay_sessions WHERE key_id = '{key}' ORDER BY started_at, id"
    )
    return [line.split(":")[0] for line in out.splitlines()]


def live_nodes(rig: Cluster, key: str) -> list[str]:
    """The host of each session of ``key`` that has not ended."""
    out = rig.psql(f"SELECT node FROM rtrelay_sessions WHERE key_id = '{key}' AND status = 'live'")
    return [line.split(":")[0] for line in out.splitlines()]


def billed_once(rig: Cluster, responses: Sequence[str]) -> list[tuple[str, int]]:
    """The responses among ``responses`` that do not have exactly one usage row."""
    if not responses:
        return []
    refs = ",".join(f"'{r}'" for r in responses)
    rows = rig.psql(f"SELECT ref, count(*) FROM rtrelay_usage WHERE ref IN ({refs}) GROUP BY ref")
    counts = {ref: int(n) for ref, n in (line.split("|") for line in rows.splitlines())}
    return [(r, counts.get(r, 0)) for r in responses if counts.get(r, 0) != 1]
