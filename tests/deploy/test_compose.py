"""deploy/compose.yaml is complete and safe: every file it mounts exists, every service the
stack needs is there with a health check and starts after what it depends on, and no
secret is written into it.

No container runtime is needed: the file is parsed, and the files it names are checked
against the relay's own config loader, Prometheus' and Grafana's files and nginx's config.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_recipes import DEPLOY, recipe_settings, seconds, secret_names, stop_budget

COMPOSE = DEPLOY / "compose.yaml"
RELAYS = ("relay-1", "relay-2")
SECRET_WORDS = re.compile(r"PASSWORD|TOKEN|SECRET|API_KEY|_KEY$|STORE_URL", re.IGNORECASE)


@cache
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]  # type: ignore[no-any-return]


def bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    """(host path, container path) of the service's bind mounts (named volumes left out)."""
    out = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            out.append(((DEPLOY / source).resolve(), target))
    return out


def mounted_at(service: str, target: str) -> Path:
    (found,) = [host for host, inside in bind_mounts(services()[service]) if inside == target]
    return found


def env_file_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            names.add(line.split("=", 1)[0].strip())
    return names


def template_of(path: Path) -> Path:
    """A secret file is not in the repository: its ``.example`` template is."""
    return path.with_name(path.name + ".example")


def test_the_stack_has_every_service() -> None:
    assert set(services()) >= {
        *RELAYS,
        "migrate",
        "postgres",
        "redis",
        "prometheus",
        "grafana",
        "nginx",
    }


def test_every_referenced_file_exists() -> None:
    for name, service in services().items():
        for host, _ in bind_mounts(service):
            assert host.exists(), f"{name}: {host} does not exist"
        for env_file in service.get("env_file", []):
            path = DEPLOY / (env_file if isinstance(env_file, str) else env_file["path"])
            assert template_of(path).is_file(), f"{name}: no {template_of(path).name}"
        build = service.get("build")
        if build:
            context = (DEPLOY / build["context"]).resolve()
            assert (context / build["dockerfile"]).is_file(), name
    for name, secret in compose().get("secrets", {}).items():
        assert template_of(DEPLOY / secret["file"]).is_file(), f"secret {name}: no template"


def test_secret_files_are_git_ignored_and_templates_are_not() -> None:
    if shutil.which("git") is None or not (DEPLOY.parent / ".git").exists():
        pytest.skip("not a git checkout")
    real = [DEPLOY / s["file"] for s in compose()["secrets"].values()]
    real += [DEPLOY / f for s in services().values() for f in s.get("env_file", [])]
    for path in {*real, *(template_of(p) for p in real)}:
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", str(path)], cwd=DEPLOY, check=False, timeout=30
        )
        expected = 1 if path.name.endswith(".example") else 0
        assert ignored.returncode == expected, f"{path}: git check-ignore {ignored.returncode}"


def test_no_secret_is_inline() -> None:
    for name, service in services().items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: environment as a mapping"
        for variable, value in environment.items():
            if SECRET_WORDS.search(variable):
                assert variable.endswith("_FILE"), f"{name}: {variable} is inline"
            assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", str(value)), f"{name}: {variable}"
    for relay in RELAYS:
        settings = relay_settings(relay)
        names = secret_names(settings) | {"RTRELAY_STORE_URL"}
        inline = set(services()[relay].get("environment", {}))
        from_files = set().union(
            *(env_file_names(template_of(DEPLOY / f)) for f in services()[relay]["env_file"])
        )
        assert names <= from_files, f"{relay}: {sorted(names - from_files)} not in its env_file"
        assert not names & inline


def relay_settings(relay: str) -> Any:
    service = services()[relay]
    config_path = mounted_at(relay, service["command"][service["command"].index("--config") + 1])
    return recipe_settings(config_path, service.get("environment", {}))


def test_the_relay_image_is_built_here_never_pulled() -> None:
    builder = services()["migrate"]
    assert builder["build"]["dockerfile"] == "deploy/Containerfile"
    for relay in RELAYS:
        assert services()[relay]["image"] == builder["image"]
        assert services()[relay]["pull_policy"] == "never"


def test_every_long_running_service_has_a_health_check() -> None:
    for name, service in services().items():
        if service.get("restart") == "no":  # one-shots: others wait for them to complete
            continue
        check = service.get("healthcheck")
        assert check and check["test"][0] in ("CMD", "CMD-SHELL"), f"{name}: no health check"
        assert seconds(check["timeout"]) < seconds(check["interval"]), name
    for relay in RELAYS:
        probe = services()[relay]["healthcheck"]["test"]
        assert "/healthz" in probe[-1] and "curl" not in probe and "wget" not in probe
        compile(probe[-1], relay, "exec")


def depends(name: str) -> dict[str, str]:
    return {dep: spec["condition"] for dep, spec in services()[name]["depends_on"].items()}


def test_start_order() -> None:
    assert depends("migrate") == {"postgres": "service_healthy"}
    for relay in RELAYS:
        assert depends(relay)["migrate"] == "service_completed_successfully"
        assert depends(relay)["redis"] == "service_healthy"
    assert {depends("nginx")[r] for r in RELAYS} == {"service_healthy"}
    assert depends("grafana")["prometheus"] == "service_healthy"
    for name in services():  # nothing waits for a service that does not exist
        for dep in services()[name].get("depends_on", {}):
            assert dep in services(), f"{name} depends on unknown {dep}"


def test_relays_stop_after_their_drain_and_run_read_only() -> None:
    for relay in RELAYS:
        service = services()[relay]
        settings = relay_settings(relay)
        assert service["stop_signal"] == "SIGTERM"
        assert seconds(service["stop_grace_period"]) > stop_budget(settings)
        assert service["read_only"] is True and "/tmp" in service["tmpfs"]
        state = [v for v in service["volumes"] if v.split(":")[1] == "/var/lib/rtrelay"]
        assert state and not state[0].startswith((".", "/")), "state on a named volume"
        assert settings.redis.url, "relays share limits through Redis"
        assert settings.server.port == 8080


def test_nginx_balances_over_the_relays_and_upgrades_websockets() -> None:
    conf = mounted_at("nginx", "/etc/nginx/nginx.conf").read_text()
    upstream = re.search(r"upstream rtrelay \{(.*?)\}", conf, re.S)
    assert upstream
    servers = re.findall(r"server\s+([\w.-]+):(\d+)", upstream.group(1))
    assert sorted(servers) == sorted((r, "8080") for r in RELAYS)
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "proxy_set_header Connection $connection_upgrade;" in conf
    assert "proxy_http_version 1.1;" in conf
    assert re.search(r"proxy_next_upstream [^;]*http_503", conf), "retry a draining relay"
    listen = re.search(r"listen (\d+);", conf)
    assert listen and f"8080:{listen.group(1)}" in services()["nginx"]["ports"]


def test_nginx_config_is_accepted_by_nginx(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if Path(p).is_file()), None
    )
    if nginx is None:
        pytest.skip("nginx is not installed")
    conf = mounted_at("nginx", "/etc/nginx/nginx.conf").read_text()
    for relay in RELAYS:  # compose's DNS names do not resolve here
        conf = conf.replace(f"server {relay}:", "server 127.0.0.1:")
    (tmp_path / "nginx.conf").write_text(conf)
    result = subprocess.run(
        [
            nginx,
            "-t",
            "-p",
            str(tmp_path),
            "-c",
            str(tmp_path / "nginx.conf"),
            "-g",
            f"pid {tmp_path}/nginx.pid; error_log stderr;",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_prometheus_scrapes_both_relays_with_the_alert_rules() -> None:
    prometheus = yaml.safe_load(
        mounted_at("prometheus", "/etc/prometheus/prometheus.yml").read_text()
    )
    (rules_path,) = prometheus["rule_files"]
    assert mounted_at("prometheus", rules_path) == (DEPLOY / "prometheus" / "rtrelay-alerts.yml")
    (job,) = prometheus["scrape_configs"]
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    assert sorted(targets) == [f"{r}:{relay_settings(r).server.port}" for r in RELAYS]


def test_grafana_provisions_the_datasource_and_the_dashboard() -> None:
    provisioning = mounted_at("grafana", "/etc/grafana/provisioning")
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())[
        "datasources"
    ]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "rtrelay.yaml").read_text())[
        "providers"
    ]
    folder = provider["options"]["path"]
    (volume,) = [v for v in services()["grafana"]["volumes"] if v.split(":")[1] == folder]
    copier = services()["grafana-dashboards"]
    assert volume.split(":")[0] in {v.split(":")[0] for v in copier["volumes"]}
    assert mounted_at("grafana-dashboards", "/src/rtrelay-dashboard.json") == (
        DEPLOY / "grafana" / "rtrelay-dashboard.json"
    )
    # the copy replaces the dashboard's import input with the provisioned data source
    script = " ".join(copier["command"])
    assert f"s/$${{DS_PROMETHEUS}}/{datasource['uid']}/g" in script
    assert depends("grafana")["grafana-dashboards"] == "service_completed_successfully"
