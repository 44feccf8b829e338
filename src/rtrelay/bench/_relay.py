"""The rtrelay targets: ``rtrelay serve`` as an operator would run it, and its core alone.

``rtrelay``: every feature on. Auth uses the key store with a real ``rk_`` key; the
SQLite ledger meters every response; the key carries concurrency, start-rate and
budget limits (set high enough never to refuse the benchmark, so the checks run
without changing the outcome). The secret lives only in this process's memory and
the handshake headers.

``rtrelay-core``: the same relay with ``auth.mode = "none"`` and ``store.ledger =
false``, so the run measures what admission and the ledger cost on top of the core.

``baseline``: the ``rtrelay`` target built from another source tree (``--baseline-src``),
measured in the same run, so a change is judged against its parent under the same noise.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from rtrelay.bench._options import TargetName
from rtrelay.bench._procs import Child, ChildFailed, Children, run_command
from rtrelay.bench._provider import START_TIMEOUT, rtrelay_argv
from rtrelay.bench._target import LIVE_MODEL, MODEL, Target

__all__ = [
    "RelayBuild",
    "relay_config",
    "source_commit",
    "source_tree",
    "sources_markdown",
    "sources_meta",
    "start_rtrelay",
    "store_path",
    "tree_for",
]

PROVIDER_KEY_ENV: Final = "RTRELAY_BENCH_PROVIDER_KEY"
# The simulated provider accepts any key; this one only proves the relay sends its own.
_PROVIDER_KEY: Final = "sk-bench-provider"


STEADY_HEARTBEAT_S: Final = 86_400
"""``timeouts.heartbeat`` of a steady relay: beyond any run (each frame still re-arms it)."""


def relay_config(
    store_url: str, provider_base: str, *, core: bool = False, steady: bool = False
) -> str:
    """The TOML config of the benchmarked relay (JSON strings are valid TOML strings).

    Args:
        steady: no job on a clock of its own that is not periodic (see ``RelayBuild``).
    """
    quiet = ["[timeouts]", f"heartbeat = {STEADY_HEARTBEAT_S}"] if steady else []
    return "\n".join(
        [
            *quiet,
            "[server]",
            'host = "127.0.0.1"',
            "workers = 1",
            "[auth]",
            f"mode = {json.dumps('none' if core else 'keys')}",
            "[store]",
            f"url = {json.dumps(store_url)}",
            f"ledger = {json.dumps(not core)}",
            *(["retention_days = 0"] if steady else []),
            "[logging]",
            'level = "INFO"',
            'format = "json"',
            "[[channels]]",
            'name = "simulated"',
            'kind = "openai"',
            f"base_url = {json.dumps(provider_base)}",
            f"api_key_env = {json.dumps(PROVIDER_KEY_ENV)}",
            f"models = [{json.dumps(MODEL)}, {json.dumps(LIVE_MODEL)}]",
            "",
        ]
    )


def store_path(workdir: Path, name: TargetName) -> Path:
    """The SQLite file a target's ledger lives in (the soak reads it back afterwards)."""
    return workdir / f"{name}.db"


@dataclass(frozen=True, slots=True)
class RelayBuild:
    """Which rtrelay a target runs: this install, or another source tree (``--relay-src``).

    Args:
        src: a tree's ``src`` directory, put first on the child's ``PYTHONPATH`` so
            ``python -m rtrelay.cli.main`` imports it instead of this install; ``None``:
            this install. The provider and the load generator always run this install.
        wrap: a command the relay runs under (``valgrind --tool=callgrind …``).
        hash_seed: fix ``PYTHONHASHSEED`` (dict and set layouts, hence instruction
            counts, then repeat from run to run).
        steady: for counts that must repeat, turn off the relay's one-off jobs on a clock
            of their own: each leg's heartbeat (20 s after it was last re-armed; each
            frame still re-arms it) and the ledger's retention prune (60 s after start).
            What is left runs at fixed periods (``_instructions.TIMER_PERIOD_S``).
        start_timeout: how long start-up may take (minutes under valgrind).
    """

    src: Path | None = None
    wrap: tuple[str, ...] = ()
    hash_seed: int | None = None
    steady: bool = False
    start_timeout: float = START_TIMEOUT

    def env(self) -> dict[str, str]:
        """Our environment without ``RTRELAY_*`` (the config file decides everything)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RTRELAY_")}
        env.pop("PYTHONPATH", None)
        if self.src is not None:
            env["PYTHONPATH"] = str(self.src)
        if self.hash_seed is not None:
            env["PYTHONHASHSEED"] = str(self.hash_seed)
        return env


def source_tree(src: Path) -> Path:
    """``src`` resolved, checked to hold an rtrelay package.

    Raises:
        ValueError: there is no ``rtrelay/__init__.py`` under it.
    """
    resolved = src.expanduser().resolve()
    if not (resolved / "rtrelay" / "__init__.py").is_file():
        raise ValueError(f"{src} has no rtrelay package (give a tree's src/ directory)")
    return resolved


def tree_for(name: TargetName, *, relay_src: Path | None, baseline_src: Path | None) -> Path | None:
    """The source tree an rtrelay target runs: ``baseline``'s own, the others ``relay_src``."""
    return baseline_src if name == "baseline" else relay_src


def sources_meta(*, relay_src: Path | None, baseline_src: Path | None) -> dict[str, str | None]:
    """The trees and their commits, for a results document's ``meta``."""
    return {
        "relay_src": None if relay_src is None else str(relay_src),
        "relay_commit": source_commit(relay_src),
        "baseline_src": None if baseline_src is None else str(baseline_src),
        "baseline_commit": source_commit(baseline_src),
    }


def sources_markdown(meta: dict[str, Any]) -> list[str]:
    """A line per tree given, for a results table."""
    return [
        f"- {side} source: {meta[f'{side}_src']} (commit {meta.get(f'{side}_commit') or '?'})"
        for side in ("relay", "baseline")
        if meta.get(f"{side}_src")
    ]


def source_commit(src: Path | None) -> str | None:
    """The git commit a source tree is at (``None``: this install, or not a git tree)."""
    if src is None:
        return None
    done = subprocess.run(
        ["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return (done.stdout.strip() or None) if done.returncode == 0 else None


async def start_rtrelay(
    children: Children,
    workdir: Path,
    provider_base: str,
    *,
    max_sessions: int,
    core: bool = False,
    name: TargetName | None = None,
    build: RelayBuild | None = None,
) -> Target:
    """Create the store and a key, then start ``rtrelay serve`` on an ephemeral port.

    The key is made by ``rtrelay keys create`` of the same build as the relay, so the
    store's schema is the one that relay migrates to (a newer tree's revision would stop
    an older relay from opening it).

    Args:
        max_sessions: the key's concurrency limit (kept above what the run opens).
        core: start ``rtrelay-core`` (no key, no ledger) instead.
        name: the target's name (default ``rtrelay`` or ``rtrelay-core``).
        build: which rtrelay, under what (default: this install, as is).

    Raises:
        ChildFailed: the key could not be made, or the relay did not start.
    """
    build = build or RelayBuild()
    name = name or ("rtrelay-core" if core else "rtrelay")
    store_url = f"sqlite+aiosqlite:///{store_path(workdir, name)}"
    config_path = workdir / f"{name}.toml"
    config_path.write_text(relay_config(store_url, provider_base, core=core, steady=build.steady))
    env = build.env()
    headers: dict[str, str] = {}
    if not core:
        secret = await _create_key(config_path, env, max_sessions)
        headers["Authorization"] = f"Bearer {secret}"
    env[PROVIDER_KEY_ENV] = _PROVIDER_KEY
    child = children.add(
        Child(
            name,
            [*build.wrap, *rtrelay_argv("serve", "--config", str(config_path), "--port", "0")],
            log_path=workdir / f"{name}.log",
            env=env,
        )
    )
    child.start()
    match = await child.wait_for(r'"url":\s*"http://127\.0\.0\.1:(\d+)"', build.start_timeout)
    port = int(match.group(1))
    return Target(name, f"ws://127.0.0.1:{port}/v1/realtime?model={MODEL}", headers, pid=child.pid)


async def _create_key(config: Path, env: dict[str, str], max_sessions: int) -> str:
    """``rtrelay keys create`` in the relay's build; the secret stays in memory only."""
    argv = rtrelay_argv(
        "keys",
        "create",
        "--config",
        str(config),
        "--json",
        "--name",
        "bench",
        "--models",
        f"{MODEL},{LIVE_MODEL}",
        "--max-sessions",
        str(max_sessions),
        "--sessions-per-minute",
        "1000000",
        "--budget-usd",
        "1000000",
    )
    done = await run_command(argv, timeout=START_TIMEOUT, env=env)
    for line in reversed(done.stdout.decode(errors="replace").splitlines()):
        if line.startswith("{"):
            secret = json.loads(line).get("secret")
            if isinstance(secret, str) and secret:
                return secret
    tail = "\n".join(done.stderr.decode(errors="replace").splitlines()[-10:])
    raise ChildFailed(f"rtrelay keys create failed (exit {done.returncode}):\n{tail}")
