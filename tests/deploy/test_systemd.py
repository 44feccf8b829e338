"""deploy/systemd/rtrelay.service: systemd accepts it, it stops only after rtrelay's drain,
restarts on failure, keeps secrets in an EnvironmentFile and confines the relay to its
state directory."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from collections import defaultdict
from pathlib import Path

import pytest
from deploy_recipes import DEPLOY, recipe_settings, seconds, secret_names, stop_budget

SYSTEMD = DEPLOY / "systemd"
UNIT = SYSTEMD / "rtrelay.service"
INSTALL_PREFIX = "/opt/rtrelay/bin/"

Unit = dict[str, dict[str, list[str]]]


def unit() -> Unit:
    """Section → key → values (a key may repeat, as SystemCallFilter= does)."""
    sections: Unit = {}
    current: dict[str, list[str]] = defaultdict(list)
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), defaultdict(list))
            continue
        key, _, value = line.partition("=")
        current[key.strip()].append(value.strip())
    return sections


def service(key: str) -> str:
    values = unit()["Service"][key]
    assert values, f"[Service] has no {key}="
    return values[-1]


def config_file() -> Path:
    """The unit's --config, shipped in deploy/systemd/ under the same name."""
    argv = service("ExecStart").split()
    return SYSTEMD / Path(argv[argv.index("--config") + 1]).name


def test_stops_after_the_drain_and_restarts_on_failure() -> None:
    settings = recipe_settings(config_file())
    assert service("KillSignal") == "SIGTERM"
    assert seconds(service("TimeoutStopSec")) > stop_budget(settings), (
        f"TimeoutStopSec={service('TimeoutStopSec')} must exceed the drain "
        f"({settings.timeouts.drain} s) + rtrelay's stop margin"
    )
    assert service("Restart") == "on-failure"
    # mixed: SIGTERM to the master only (it drains its workers), SIGKILL to all at the timeout
    assert service("KillMode") == "mixed"


def test_runs_the_relay_and_upgrades_the_store_first() -> None:
    assert service("ExecStart").startswith(f"{INSTALL_PREFIX}rtrelay serve --config ")
    assert service("ExecStartPre").startswith(f"{INSTALL_PREFIX}rtrelay db upgrade --config ")
    assert service("User") not in ("root", "0")


def test_hardening() -> None:
    state = f"/var/lib/{service('StateDirectory')}"
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ReadWritePaths": state,
        "WorkingDirectory": state,
        "CapabilityBoundingSet": "",
    }
    for key, value in expected.items():
        assert service(key) == value, key
    settings = recipe_settings(config_file())
    assert Path(settings.store.journal).is_relative_to(state), "the journal must be writable"


def test_secrets_only_in_the_environment_file() -> None:
    environment_file = service("EnvironmentFile").lstrip("-")
    template = SYSTEMD / (Path(environment_file).name + ".example")
    names = {
        line.split("=", 1)[0]
        for line in template.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    settings = recipe_settings(config_file())
    assert secret_names(settings) | {"RTRELAY_STORE_URL"} <= names
    assert "Environment" not in unit()["Service"], "no inline Environment= (secrets leak there)"


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    return found


def test_systemd_analyze_verify_accepts_it(tmp_path: Path) -> None:
    """verify checks every directive and that the commands exist: the unit runs rtrelay from
    this checkout's environment instead of /opt/rtrelay, and must draw no warning."""
    scripts = Path(sysconfig.get_path("scripts"))
    assert (scripts / "rtrelay").is_file()
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace(INSTALL_PREFIX, f"{scripts}/"))
    result = subprocess.run(
        [systemd_analyze(), "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not output, output
