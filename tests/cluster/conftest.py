"""The cluster fixtures: one cluster for the whole run (building it takes 10-40 s here),
fresh clients per test, and before each test every link up and every relay running again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from rig import RELAYS, Clients, Cluster, cluster, unavailable_reason

PROVIDER_OPTIONS = ("--pacing", "1.0", "--reply-audio-ms", "600", "--audio-chunk-ms", "100")
"""Responses last ~0.6 s: long enough to be cut mid-stream, short enough for many."""


@pytest.fixture(scope="session")
def rig() -> Iterator[Cluster]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with cluster(provider_options=PROVIDER_OPTIONS) as built:
        yield built


@pytest.fixture(autouse=True)
def whole(rig: Cluster) -> None:
    """Each test starts with every link up and every relay running, whatever the last one
    left (a test that failed halfway must not fail the others too)."""
    for host, peer in list(rig.cuts):
        rig.restore(host, peer)
    for host in RELAYS:
        if not any(p.poll() is None for p in rig.processes.get(host, [])):
            rig.kill_host(host)  # an orphaned worker, if any
            rig.start_relay(host)


@pytest.fixture
async def clients(rig: Cluster) -> AsyncIterator[Clients]:
    driver = await Clients.start(rig)
    try:
        yield driver
    finally:
        await driver.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is a ``cluster`` test (``-m "not cluster"`` leaves them out), with
    time for the first one to build the cluster and for hosts to restart on a busy machine."""
    here = str(Path(__file__).parent)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.cluster)
            item.add_marker(pytest.mark.timeout(300))
