"""The Grafana dashboard and the alert rules are well formed and query only what /metrics exports.

A renamed series or label leaves a dashboard panel silently empty and an alert silently
unable to fire, so every PromQL expression in deploy/ is parsed and checked against a
scrape of a real relay that has served sessions of every kind.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import promql_parser as promql
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from rtc_helpers import RtcClient
from rtrelay.edge.app import CALLS
from rtrelay.ledger.keys import KeySpec
from rtrelay.mock import MockOptions, MockProvider
from rtrelay.wire import CALLS_PATH
from support import read_error_and_close, running_relay, settings_for, upgrade_headers

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "rtrelay-dashboard.json"
ALERTS = DEPLOY / "prometheus" / "rtrelay-alerts.yml"

METRIC_NAME = re.compile(r"rtrelay_[a-z_]+")
GRAFANA_VARIABLE = re.compile(r"\$\{?(\w+)\}?")
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")
TARGET_LABELS = frozenset({"job", "instance"})
"""Added by Prometheus at scrape time, so never in rtrelay's own exposition."""
COUNTER_SUFFIXES = ("_total", "_bucket", "_sum", "_count")
RATE_FUNCTIONS = frozenset({"rate", "irate", "increase"})


# -- the files ------------------------------------------------------------------------------


def load_dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def load_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those folded inside collapsed rows."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def graph_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in panels(dashboard) if p["type"] != "row"]


def as_promql(expr: str) -> str:
    """Grafana's ``$__range``-style intervals become 5m, ``$job``-style variables ``.*``."""
    return GRAFANA_VARIABLE.sub(lambda m: "5m" if m[1].startswith("__") else ".*", expr)


def queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target, template variable and alert rule."""
    dashboard = load_dashboard()
    out = [
        (f"panel {panel['title']!r}", as_promql(target["expr"]))
        for panel in graph_panels(dashboard)
        for target in panel["targets"]
    ]
    for variable in dashboard["templating"]["list"]:
        match = LABEL_VALUES.match(variable["query"]["query"])
        assert match, variable
        out.append((f"variable {variable['name']!r}", as_promql(match["selector"])))
    out += [(f"alert {rule['alert']}", rule["expr"]) for rule in load_rules()]
    return out


# -- PromQL syntax trees --------------------------------------------------------------------


def nodes(expr: promql.Expr) -> list[promql.Expr]:
    found: list[promql.Expr] = []
    promql.walk(expr, found.append)
    return found


@dataclass(frozen=True)
class Selector:
    name: str
    matchers: tuple[promql.Matcher, ...]


def selectors(expr: promql.Expr) -> list[Selector]:
    """Every series selector below ``expr``; each must name its metric."""
    out = []
    for node in nodes(expr):
        if isinstance(node, promql.VectorSelector):
            assert node.name, f"selector without a metric name in {expr}"
            out.append(Selector(node.name, tuple(node.matchers.matchers)))
    return out


def unparen(expr: promql.Expr) -> promql.Expr:
    while isinstance(expr, promql.ParenExpr):
        expr = expr.expr
    return expr


def group_labels(agg: promql.AggregateExpr) -> list[str]:
    if agg.modifier is None or agg.modifier.type != promql.AggModifierType.By:
        return []
    return list(agg.modifier.labels)


def called(expr: promql.Expr, names: frozenset[str]) -> list[promql.Call]:
    return [n for n in nodes(expr) if isinstance(n, promql.Call) and n.func.name in names]


# -- the files' structure (no relay needed) --------------------------------------------------


def test_dashboard_imports_anywhere_under_its_uid() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] == "rtrelay-overview"
    assert dashboard["id"] is None
    assert dashboard["schemaVersion"] >= 36  # Grafana 10+
    (ds_input,) = dashboard["__inputs"]
    assert ds_input["name"] == "DS_PROMETHEUS"
    assert ds_input["pluginId"] == "prometheus"
    # every query goes to the data source picked at import, never a hard-coded one
    for panel in graph_panels(dashboard):
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"job", "instance"}
    assert all(v["datasource"]["uid"] == "${DS_PROMETHEUS}" for v in variables.values())


def test_every_panel_has_a_title_and_a_query() -> None:
    dashboard = load_dashboard()
    graphs = graph_panels(dashboard)
    assert len(graphs) >= 20
    for panel in graphs:
        assert panel["title"].strip()
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            # the instance picker means something only if every query honours it
            assert 'job=~"$job"' in target["expr"], panel["title"]
            assert 'instance=~"$instance"' in target["expr"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]
    assert all(p["title"].strip() for p in panels(dashboard))
    ids = [p["id"] for p in panels(dashboard)]
    assert len(set(ids)) == len(ids)


def test_panels_fit_the_grid_without_overlapping() -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in panels(load_dashboard()):
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']!r} overlaps {taken[x, y]!r}"
                taken[x, y] = panel["title"]


def test_dashboard_has_the_panels_operators_look_for() -> None:
    titles = " | ".join(p["title"].lower() for p in graph_panels(load_dashboard()))
    for wanted in (
        "connection success rate",
        "refusals by reason",
        "active sessions",
        "session starts/s",
        "dial latency",
        "dial failures",
        "circuit state",
        "first provider event",
        "relay-added latency",
        "frames/s",
        "bytes/s",
        "close codes",
        "session errors",
        "spend (usd/hour)",
        "tokens/s",
        "unpriced",
        "budget refusals",
    ):
        assert wanted in titles, wanted
    kinds = {p["type"] for p in graph_panels(load_dashboard())}
    assert {"stat", "timeseries", "state-timeline"} <= kinds


def test_every_alert_is_complete() -> None:
    rules = load_rules()
    names = [rule["alert"] for rule in rules]
    assert len(set(names)) == len(names)
    for rule in rules:
        assert rule["expr"].strip(), rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]
    assert {
        "RtrelayConnectionSuccessRateLow",
        "RtrelayChannelCircuitOpen",
        "RtrelayAllChannelsOpen",
        "RtrelayNoSuccessfulHandshakes",
        "RtrelayNoHandshakes",
        "RtrelayRelayAddedLatencyHigh",
        "RtrelayUpstreamDisconnects",
    } <= set(names)
    severity = {rule["alert"]: rule["labels"]["severity"] for rule in rules}
    assert severity["RtrelayAllChannelsOpen"] == "critical"


QUERIES = queries()


@pytest.mark.parametrize(("where", "expr"), QUERIES, ids=[where for where, _ in QUERIES])
def test_query_is_valid_promql_used_correctly(where: str, expr: str) -> None:
    tree = promql.parse(expr)  # raises on a syntax error, an unknown function or a bad type
    for call in called(tree, frozenset({"histogram_quantile"})):
        inner = unparen(call.args[1])
        assert isinstance(inner, promql.AggregateExpr), f"{where}: quantile of an unsummed rate"
        assert "le" in group_labels(inner), f"{where}: histogram_quantile needs sum by (le, ...)"
        names = {s.name for s in selectors(inner)}
        assert names and all(n.endswith("_bucket") for n in names), where
    # the bindings build fresh node objects on every access, so count instead of comparing
    quantiled = [s for c in called(tree, frozenset({"histogram_quantile"})) for s in selectors(c)]
    buckets = [s for s in selectors(tree) if s.name.endswith("_bucket")]
    assert len(buckets) == len(quantiled), f"{where}: raw _bucket series outside a quantile"
    for call in called(tree, RATE_FUNCTIONS):
        for sel in selectors(call):
            assert sel.name.endswith(COUNTER_SUFFIXES), f"{where}: {call.func.name}({sel.name})"


# -- against a real relay's /metrics ----------------------------------------------------------


@dataclass
class Exposition:
    """What a scrape of /metrics offers a query: series names, their labels and values."""

    families: dict[str, set[str]] = field(default_factory=dict)  # family -> series names
    kinds: dict[str, str] = field(default_factory=dict)  # series name -> counter/gauge/...
    labels: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # series -> values
    sampled: set[str] = field(default_factory=set)  # series with at least one sample

    @classmethod
    def parse(cls, text: str) -> Exposition:
        out = cls()
        for family in text_string_to_metric_families(text):
            # prometheus_client exports each counter's and histogram's creation time as its
            # own "<name>_created" gauge family: real, but nothing to chart
            if not family.name.startswith("rtrelay_") or family.name.endswith("_created"):
                continue
            suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
            names = {family.name + s for s in suffixes.get(family.type, ("",))}
            names |= {s.name for s in family.samples if not s.name.endswith("_created")}
            out.families[family.name] = names
            for name in names:
                out.kinds[name] = family.type
                out.labels.setdefault(name, {})
            for sample in family.samples:
                out.sampled.add(sample.name)
                for label, value in sample.labels.items():
                    out.labels[sample.name].setdefault(label, set()).add(value)
        return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def scrape_after_every_kind_of_session() -> Exposition:
    """Serve sessions and refusals that put a sample in every rtrelay series."""
    async with (
        MockProvider(MockOptions(realtime_pacing=0, reply_audio_ms=300)) as sim,
        MockProvider(MockOptions(realtime_pacing=0, drop_after_events=1)) as flaky,
    ):
        channels = [
            {
                "name": "sim",
                "kind": "openai",
                "base_url": sim.url,
                "models": ["gpt-realtime", "rt-unpriced"],
            },
            {"name": "flaky", "kind": "openai", "base_url": flaky.url, "models": ["rt-drop"]},
            {
                "name": "dead",
                "kind": "openai",
                "base_url": f"ws://127.0.0.1:{free_port()}/v1",
                "models": ["gpt-realtime-mini"],
            },
        ]
        settings = settings_for(channels=channels, auth={"mode": "keys"})
        async with running_relay(settings) as relay, aiohttp.ClientSession() as http:
            store = relay.relay.parts.store
            _, key = await store.create_key(KeySpec(name="dash"))
            _, spent = await store.create_key(KeySpec(name="spent", budget_usd=Decimal(0)))
            auth = {"Authorization": f"Bearer {key}"}
            # priced and unpriced responses: tokens, cost, unpriced, relay-added latency
            for model in ("gpt-realtime", "rt-unpriced"):
                async with http.ws_connect(relay.realtime(model), headers=auth) as ws:
                    assert (await ws.receive_json())["type"] == "session.created"
                    await ws.send_json({"type": "response.create"})
                    while (await ws.receive_json())["type"] != "response.done":
                        pass
            # the provider drops mid-session: session error upstream_disconnected, close 1011
            async with http.ws_connect(relay.realtime("rt-drop"), headers=auth) as ws:
                _, code, _ = await read_error_and_close(ws)
                assert code == 1011
            # refusals: a spent budget at connect, and a channel whose port is closed
            for model, headers, status in (
                ("gpt-realtime", {"Authorization": f"Bearer {spent}"}, 429),
                ("gpt-realtime-mini", auth, 503),
            ):
                url = relay.realtime(model)
                async with http.get(url, headers=upgrade_headers(**headers)) as resp:
                    assert resp.status == status, model
            # a WebRTC call (active calls, sideband attach latency), then one whose
            # sideband the provider refuses (an attach failure: the call is hung up)
            async with RtcClient() as peer:
                await peer.start(http, relay.url + CALLS_PATH, api_key=key, model="gpt-realtime")
            sim.options = replace(sim.options, refuse_sideband_status=503)
            async with RtcClient() as peer:
                await peer.call(http, relay.url + CALLS_PATH, api_key=key, model="gpt-realtime")
                assert peer.status == 502, peer.body
            async with asyncio.timeout(10):
                while relay.app[CALLS].calls:
                    await asyncio.sleep(0.01)
            async with asyncio.timeout(10):
                while relay.relay.sessions:  # settled: durations, closes, usage
                    await asyncio.sleep(0.01)
            relay.relay.flush_metrics()
            async with http.get(f"{relay.url}/metrics") as resp:
                assert resp.status == 200
                return Exposition.parse(await resp.text())


@pytest.fixture(scope="module")
def exposition() -> Exposition:
    """One relay run shared by the checks below (they only read the scrape)."""
    return asyncio.run(asyncio.wait_for(scrape_after_every_kind_of_session(), 20))


def test_every_series_queried_is_exported(exposition: Exposition) -> None:
    for where, expr in queries():
        names = set(METRIC_NAME.findall(expr))
        assert names, f"{where}: queries no rtrelay series"
        missing = names - set(exposition.kinds)
        assert not missing, f"{where}: {sorted(missing)} not in /metrics"
        # the scrape had samples, so the label checks below are not vacuous
        assert names <= exposition.sampled, f"{where}: {sorted(names - exposition.sampled)}"


def test_every_exported_family_is_on_the_dashboard(exposition: Exposition) -> None:
    shown = {
        name
        for where, expr in queries()
        if where.startswith("panel")
        for name in METRIC_NAME.findall(expr)
    }
    hidden = [family for family, names in exposition.families.items() if not names & shown]
    assert not hidden, f"no panel shows {hidden}"
    assert len(exposition.families) >= 15


def test_labels_and_values_queried_exist(exposition: Exposition) -> None:
    for where, expr in queries():
        tree = promql.parse(expr)
        for sel in selectors(tree):
            known = exposition.labels[sel.name]
            for matcher in sel.matchers:
                if matcher.name in TARGET_LABELS:
                    continue
                assert matcher.name in known, f"{where}: {sel.name} has no label {matcher.name}"
                if matcher.op == promql.MatchOp.Equal:
                    assert matcher.value in known[matcher.name], (
                        f"{where}: {sel.name}{{{matcher.name}={matcher.value!r}}} never exported"
                    )
        for agg in (n for n in nodes(tree) if isinstance(n, promql.AggregateExpr)):
            below = set(TARGET_LABELS)
            for sel in selectors(agg):
                below |= set(exposition.labels[sel.name])
            missing = set(group_labels(agg)) - below
            assert not missing, f"{where}: sum by {sorted(missing)} over series without them"
    for variable in load_dashboard()["templating"]["list"]:
        match = LABEL_VALUES.match(variable["query"]["query"])
        assert match and match["label"] in TARGET_LABELS, variable["name"]


def test_functions_get_the_metric_types_they_need(exposition: Exposition) -> None:
    for where, expr in queries():
        tree = promql.parse(expr)
        for call in called(tree, RATE_FUNCTIONS):
            for sel in selectors(call):
                kind = exposition.kinds[sel.name]
                assert kind in ("counter", "histogram"), f"{where}: rate of {kind} {sel.name}"
        for call in called(tree, frozenset({"histogram_quantile"})):
            for sel in selectors(call):
                assert exposition.kinds[sel.name] == "histogram", f"{where}: {sel.name}"
