"""A relay cluster on one machine: hosts are network namespaces joined by veth links.

Every host has one address (``ADDRESSES``, on its loopback) and a point-to-point veth link
to each host it talks to, with a /32 route to that peer through it, as separate machines
on a switched network would. Cutting one link (``cut``) is then a partition between exactly
two hosts, the rest of the cluster unaffected::

    client ── lb (nginx :80) ──┬── relay1 ──┬── data (PostgreSQL :5432, Redis :6379)
       ├──── (direct) ─────────┤   relay2 ──┤
       └──── (direct) ─────────┴── relay3 ──┴── provider (rtrelay mock :8765)

The relays run ``rtrelay serve --workers 2`` from one shared config (relay3 with
``RTRELAY_REDIS_ON_ERROR=open``, so both Redis policies can be cut off), each under its own
host name (a UTS namespace: the ledger's node column tells the hosts apart, as it would on
real machines), in its own working directory (its ledger journal). Everything a run creates
is named ``rtrc<pid>-…`` (namespaces) or ``/tmp/rtrelay-cluster-<pid>-…`` (files), so a
run left behind by a crashed process (its pid gone) is recognised and removed by the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from rtrelay.bench._nginx import TEMP_DIRS, find_nginx, http_common

__all__ = [
    "ADDRESSES",
    "RELAYS",
    "Clients",
    "Cluster",
    "ClusterUnavailable",
    "cluster",
    "unavailable_reason",
]

PREFIX: Final = "rtrc"
TMP_PREFIX: Final = "rtrelay-cluster-"
ADDRESSES: Final = {
    "data": "10.213.0.10",
    "provider": "10.213.0.11",
    "lb": "10.213.0.12",
    "relay1": "10.213.0.21",
    "relay2": "10.213.0.22",
    "relay3": "10.213.0.23",
    "client": "10.213.0.31",
}
RELAYS: Final = ("relay1", "relay2", "relay3")
LINKS: Final = (
    *((relay, "data") for relay in RELAYS),
    *((relay, "provider") for relay in RELAYS),
    *(("lb", relay) for relay in RELAYS),
    ("client", "lb"),
    ("client", "relay1"),  # one relay direct: the baseline of the handshake figures
    ("client", "relay3"),
)
RELAY_PORT: Final = 8080
LB_PORT: Final = 80
PROVIDER_PORT: Final = 8765
PG_PORT: Final = 5432
REDIS_PORT: Final = 6379
LEASE_TTL: Final = 3.0
"""Seconds; short, so a dead host's leases expire within one test."""
DRAIN: Final = 4.0
FAIL_TIMEOUT: Final = 3
"""nginx: seconds an upstream that failed is left out (passive health check)."""
ON_ERROR_OPEN: Final = "relay3"
"""The one relay told ``RTRELAY_REDIS_ON_ERROR=open``: both policies can be cut off."""
START_TIMEOUT: Final = 60.0
CUT_TABLE: Final = "rtrelay_cluster_cut"
PROVIDER_KEY_ENV: Final = "CLUSTER_PROVIDER_KEY"
TOKEN_SECRET: Final = "cluster-token-secret-for-tests-only"


class ClusterUnavailable(RuntimeError):
    """This machine cannot build the cluster (not root, no ``ip netns``, a tool missing)."""


def unavailable_reason() -> str | None:
    """Why the cluster cannot be built here, or ``None``."""
    if os.geteuid() != 0:
        return "the cluster test needs root (network namespaces)"
    for tool in ("ip", "nft", "unshare", "runuser", "redis-server"):
        if _which(tool) is None:
            return f"the cluster test needs {tool} (scripts/bootstrap --test installs it)"
    if find_nginx() is None:
        return "the cluster test needs nginx (scripts/bootstrap --test installs it)"
    if not _pg_bin():
        return "the cluster test needs PostgreSQL's initdb/pg_ctl (/usr/lib/postgresql/*/bin)"
    probe = f"{PREFIX}{os.getpid()}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False)
    if made.returncode != 0:
        return f"ip netns is not available here: {made.stderr.decode().strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


def _which(tool: str) -> str | None:
    found = shutil.which(tool)
    if found is None:
        for folder in ("/usr/sbin", "/sbin", "/usr/bin"):
            if os.access(f"{folder}/{tool}", os.X_OK):
                return f"{folder}/{tool}"
    return found


def _pg_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return str(Path(found[-1]).parent) if found else None


@dataclass(slots=True)
class Cluster:
    """One run's hosts, links and processes; ``close`` undoes all of it."""

    run: str
    workdir: Path
    processes: dict[str, list[subprocess.Popen[bytes]]] = field(default_factory=dict)
    cuts: set[tuple[str, str]] = field(default_factory=set)

    # -- names and commands ---------------------------------------------------------------

    def ns(self, host: str) -> str:
        return f"{self.run}-{host}"

    def in_host(self, host: str, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns(host), *command]

    def sh(self, host: str, *command: str, timeout: float = 30.0) -> str:
        """Run a short command on ``host``; its stdout (raises on failure)."""
        done = subprocess.run(
            self.in_host(host, *command), capture_output=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{host}: {' '.join(command)} exited {done.returncode}: "
                f"{done.stderr.decode(errors='replace')[-2000:]}"
            )
        return done.stdout.decode()

    def spawn(
        self, host: str, name: str, command: Sequence[str], *, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a long-running process on ``host``; output goes to ``<workdir>/<name>.log``."""
        log = (self.workdir / f"{name}.log").open("ab")
        cwd = self.workdir / host
        cwd.mkdir(exist_ok=True)
        proc = subprocess.Popen(
            self.in_host(host, *command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        log.close()
        self.processes.setdefault(host, []).append(proc)
        return proc

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- network ----------------------------------------------------------------------------

    def build_network(self) -> None:
        for host, address in ADDRESSES.items():
            _ip("netns", "add", self.ns(host))
            _ip("-n", self.ns(host), "link", "set", "dev", "lo", "up")
            _ip("-n", self.ns(host), "addr", "add", f"{address}/32", "dev", "lo")
        for a, b in LINKS:
            _ip(
                *("link", "add", "name", f"to-{b}", "netns", self.ns(a), "type", "veth"),
                *("peer", "name", f"to-{a}", "netns", self.ns(b)),
            )
            self._link_up(a, b)

    def _link_up(self, a: str, b: str) -> None:
        """Both ends up and each end's route to the other (a link that went down lost them)."""
        for here, there in ((a, b), (b, a)):
            dev = f"to-{there}"
            _ip("-n", self.ns(here), "link", "set", "dev", dev, "up")
            _ip(
                *("-n", self.ns(here), "route", "replace", f"{ADDRESSES[there]}/32"),
                *("dev", dev, "src", ADDRESSES[here]),
            )

    def cut(self, host: str, peer: str, *, port: int | None = None) -> None:
        """Partition ``host`` from ``peer``: the link goes down (connections fail at once);
        with ``port``, only that service's packets on the link are dropped, both ways
        (nftables; this kernel has no ``netem``): the peers are not told, they time out."""
        if port is None:
            _ip("-n", self.ns(host), "link", "set", "dev", f"to-{peer}", "down")
        else:
            for here, there, field in ((host, peer, "dport"), (peer, host, "sport")):
                rules = (
                    f"table inet {CUT_TABLE} {{ chain out {{ type filter hook output "
                    f'priority 0; oifname "to-{there}" tcp {field} {port} drop\n}}\n}}\n'
                )
                done = subprocess.run(
                    ["ip", "netns", "exec", self.ns(here), "nft", "-f", "-"],
                    input=rules.encode(),
                    capture_output=True,
                    check=False,
                )
                if done.returncode != 0:
                    raise RuntimeError(f"nft: {done.stderr.decode(errors='replace')}")
        self.cuts.add((host, peer))

    def restore(self, host: str, peer: str) -> None:
        for here in (host, peer):
            subprocess.run(
                ["ip", "netns", "exec", self.ns(here), "nft", "delete", "table", "inet", CUT_TABLE],
                capture_output=True,
                check=False,
            )
        self._link_up(host, peer)
        self.cuts.discard((host, peer))

    # -- services ---------------------------------------------------------------------------

    def start_data(self) -> None:
        pg = _pg_bin()
        assert pg is not None
        db = self.workdir / "data" / "pg"
        db.parent.mkdir(exist_ok=True)
        shutil.chown(db.parent, "postgres")
        db.parent.chmod(0o755)
        _run(
            "runuser",
            "-u",
            "postgres",
            "--",
            f"{pg}/initdb",
            "-D",
            str(db),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        )
        with (db / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '{ADDRESSES['data']},127.0.0.1'\nport = {PG_PORT}\n"
                f"unix_socket_directories = '{db}'\nfsync = off\nsynchronous_commit = off\n"
                "full_page_writes = off\nmax_connections = 200\nshared_buffers = 32MB\n"
            )
        with (db / "pg_hba.conf").open("a") as hba:
            hba.write("host all all 10.213.0.0/24 trust\n")
        self.sh(
            "data",
            *("runuser", "-u", "postgres", "--", f"{pg}/pg_ctl", "-D", str(db)),
            *("-l", str(db.parent / "postgres.log"), "-w", "-t", "60", "start"),
            timeout=90,
        )
        self.psql("CREATE DATABASE rtrelay", database="postgres")
        self.spawn(
            "data",
            "redis",
            [
                _which("redis-server") or "redis-server",
                *("--bind", ADDRESSES["data"], "127.0.0.1", "--port", str(REDIS_PORT)),
                *("--save", "", "--appendonly", "no", "--protected-mode", "no"),
                *("--dir", str(self.workdir / "data")),
            ],
        )
        self.wait_port("data", REDIS_PORT)

    def psql(self, sql: str, *, database: str = "rtrelay") -> str:
        """Run SQL on the data host's PostgreSQL; rows as ``|``-separated lines."""
        return self.sh(
            "data",
            *("psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"),
            *("-p", str(PG_PORT), "-U", "postgres", "-d", database, "-c", sql),
        ).strip()

    def start_provider(self, *options: str) -> None:
        self.spawn(
            "provider",
            "provider",
            [
                *(sys.executable, "-m", "rtrelay.cli.main", "mock"),
                *("--host", ADDRESSES["provider"], "--port", str(PROVIDER_PORT), *options),
            ],
        )
        self.wait_port("provider", PROVIDER_PORT)

    def config(self, **redis: str) -> Path:
        """The relays' shared config (``redis`` overrides keys of ``[redis]``)."""
        data = ADDRESSES["data"]
        section = {"url": f'"redis://{data}:{REDIS_PORT}/0"', "on_error": '"closed"', **redis}
        path = self.workdir / "rtrelay.toml"
        path.write_text(
            f"""\
[server]
host = "0.0.0.0"
port = {RELAY_PORT}
workers = 2

[timeouts]
dial = 3
handshake_deadline = 6
drain = {DRAIN}

[store]
url = "postgresql+asyncpg://postgres@{data}:{PG_PORT}/rtrelay"

[redis]
lease_ttl = {LEASE_TTL}
{chr(10).join(f"{k} = {v}" for k, v in section.items())}

[logging]
level = "INFO"

[[channels]]
name = "provider"
kind = "openai"
base_url = "ws://{ADDRESSES["provider"]}:{PROVIDER_PORT}/v1"
api_key_env = "{PROVIDER_KEY_ENV}"
models = ["gpt-realtime"]
"""
        )
        return path

    def relay_env(self, host: str) -> dict[str, str]:
        env = {PROVIDER_KEY_ENV: "sk-cluster-provider", "RTRELAY_TOKEN_SECRET": TOKEN_SECRET}
        if host == ON_ERROR_OPEN:
            env["RTRELAY_REDIS_ON_ERROR"] = "open"
        return env

    def start_relay(self, host: str, *, wait: bool = True) -> None:
        """``rtrelay serve --workers 2`` on ``host``, under the host's own name."""
        self.spawn(
            host,
            host,
            [
                *("unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "sh"),
                *(sys.executable, "-m", "rtrelay.cli.main", "serve"),
                *("--config", str(self.workdir / "rtrelay.toml")),
            ],
            env=self.relay_env(host),
        )
        if wait:
            self.wait_ready(host)

    def wait_ready(self, host: str) -> None:
        """Until ``host``'s relay answers ``/readyz`` 200 (both workers up: asked twice)."""
        deadline = time.monotonic() + START_TIMEOUT
        ok = 0
        while ok < 4:
            if time.monotonic() > deadline:
                raise ClusterUnavailable(f"{host} never became ready:\n{self.log(host)[-3000:]}")
            status = self.http_status(host, ADDRESSES[host], RELAY_PORT, "/readyz")
            ok = ok + 1 if status == 200 else 0
            time.sleep(0.1)

    def http_status(self, host: str, address: str, port: int, path: str) -> int | None:
        """GET ``path`` from ``host``'s namespace (``None``: no answer)."""
        script = (
            "import sys, urllib.request, urllib.error\n"
            "try:\n"
            f"    r = urllib.request.urlopen('http://{address}:{port}{path}', timeout=3)\n"
            "    print(r.status)\n"
            "except urllib.error.HTTPError as e:\n"
            "    print(e.code)\n"
            "except OSError:\n"
            "    print(0)\n"
        )
        try:
            out = self.sh(host, sys.executable, "-c", script).strip()
        except (RuntimeError, subprocess.TimeoutExpired):
            return None
        return int(out) or None

    def start_lb(self) -> None:
        nginx = find_nginx()
        assert nginx is not None
        prefix = self.workdir / "lb"
        for sub in TEMP_DIRS:
            (prefix / "temp" / sub).mkdir(parents=True, exist_ok=True)
        conf = prefix / "nginx.conf"
        conf.write_text(nginx_config(prefix))
        self.spawn("lb", "nginx", [nginx, "-p", str(prefix), "-c", str(conf)])
        self.wait_port("lb", LB_PORT)

    def wait_port(self, host: str, port: int) -> None:
        script = (
            "import socket, sys, time\n"
            f"end = time.monotonic() + {START_TIMEOUT}\n"
            "while time.monotonic() < end:\n"
            "    try:\n"
            f"        socket.create_connection(('{ADDRESSES[host]}', {port}), timeout=1).close()\n"
            "        sys.exit(0)\n"
            "    except OSError:\n"
            "        time.sleep(0.05)\n"
            "sys.exit(1)\n"
        )
        try:
            self.sh(host, sys.executable, "-c", script, timeout=START_TIMEOUT + 5)
        except RuntimeError as exc:
            raise ClusterUnavailable(f"{host}: nothing listens on {port}") from exc

    def create_key(self, name: str, *options: str) -> str:
        """A client key (``rtrelay keys create``, run on relay1); its secret."""
        out = self.sh(
            "relay1",
            *(sys.executable, "-m", "rtrelay.cli.main", "keys", "create", "--name", name),
            *(*options, "--json", "--config", str(self.workdir / "rtrelay.toml")),
        )
        secret: str = json.loads(out)["secret"]
        return secret

    # -- failures ---------------------------------------------------------------------------

    def pids(self, host: str) -> list[int]:
        out = subprocess.run(
            ["ip", "netns", "pids", self.ns(host)], capture_output=True, check=False
        ).stdout.decode()
        return [int(p) for p in out.split()]

    def kill_host(self, host: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` to every process on ``host`` (SIGKILL: the host dies, all at once)."""
        for pid in self.pids(host):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if sig == signal.SIGKILL:
            self._reap(host, timeout=10)

    def stop_relay(self, host: str, *, wait: bool = True) -> None:
        """SIGTERM the relay's master (it drains its workers); with ``wait``, until it exited."""
        for proc in self.processes.get(host, []):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        if wait:
            self.wait_stopped(host)

    def wait_stopped(self, host: str, timeout: float = DRAIN + 30) -> None:
        self._reap(host, timeout=timeout)

    def _reap(self, host: str, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for proc in self.processes.pop(host, []):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        while self.pids(host) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in self.pids(host):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    # -- teardown ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop everything, delete the namespaces and the files (safe to call twice)."""
        pg = _pg_bin()
        db = self.workdir / "data" / "pg"
        if pg and (db / "postmaster.pid").exists():
            subprocess.run(
                self.in_host(
                    "data",
                    "runuser",
                    "-u",
                    "postgres",
                    "--",
                    f"{pg}/pg_ctl",
                    "-D",
                    str(db),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ),
                capture_output=True,
                timeout=60,
                check=False,
            )
        for host in ADDRESSES:
            for proc in self.processes.get(host, []):
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
        remove_run(self.run)
        for proc in (p for procs in self.processes.values() for p in procs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        self.processes.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)


def nginx_config(prefix: Path) -> str:
    """nginx in front of the three relays.

    Open-source nginx has no active health checks: it learns a relay is out from the
    answers themselves (``max_fails``/``fail_timeout``). A draining relay answers new
    handshakes ``503 relay_shutting_down`` and, once stopped, refuses connections; both
    are in ``proxy_next_upstream``, so nginx tries the next relay with that handshake
    (a WebSocket upgrade is a GET: safe to repeat before the 101) and leaves the failed
    relay out for ``fail_timeout`` seconds.
    """
    servers = "\n".join(
        f"        server {ADDRESSES[r]}:{RELAY_PORT} max_fails=1 fail_timeout={FAIL_TIMEOUT}s;"
        for r in RELAYS
    )
    return f"""\
user root;
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log {prefix}/access.log;
{http_common(prefix / "temp")}    upstream relays {{
{servers}
    }}
    server {{
        listen {ADDRESSES["lb"]}:{LB_PORT};
        location / {{
            proxy_pass http://relays;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_next_upstream error timeout http_502 http_503 http_504;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 2s;
            proxy_buffering off;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }}
    }}
}}
"""


def _ip(*args: str) -> None:
    _run("ip", *args)


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, check=False, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.decode(errors='replace').strip()}")


_RUN_NAME: Final = re.compile(rf"^({PREFIX}(\d+))-")


def remove_run(run: str) -> None:
    """Kill whatever runs in ``run``'s namespaces and delete them."""
    for ns in _namespaces():
        if not ns.startswith(run + "-"):
            continue
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, check=False)
        for pid in pids.stdout.decode().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        for _ in range(50):
            if not subprocess.run(["ip", "netns", "pids", ns], capture_output=True).stdout.strip():
                break
            time.sleep(0.1)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def remove_leftovers() -> list[str]:
    """Remove what runs whose process is gone left behind; the runs removed."""
    removed = set()
    for ns in _namespaces():
        match = _RUN_NAME.match(ns)
        if match and not _alive(int(match.group(2))):
            remove_run(match.group(1))
            removed.add(match.group(1))
    for folder in glob.glob(os.path.join(tempfile.gettempdir(), TMP_PREFIX + "*")):
        match = re.search(rf"{TMP_PREFIX}(\d+)-", folder)
        if match and not _alive(int(match.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
            removed.add(f"{PREFIX}{match.group(1)}")
    return sorted(removed)


def _namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, check=False)
    return [line.split()[0] for line in out.stdout.decode().splitlines() if line.strip()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def cluster(*, provider_options: Sequence[str] = ()) -> Iterator[Cluster]:
    """The whole cluster, up and ready; torn down however the block ends."""
    reason = unavailable_reason()
    if reason is not None:
        raise ClusterUnavailable(reason)
    remove_leftovers()
    run = f"{PREFIX}{os.getpid()}"
    workdir = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-"))
    workdir.chmod(0o755)
    rig = Cluster(run, workdir)
    try:
        rig.build_network()
        rig.start_data()
        rig.start_provider(*provider_options)
        rig.config()
        rig.sh(
            "relay1",
            *(sys.executable, "-m", "rtrelay.cli.main", "db", "upgrade"),
            *("--config", str(workdir / "rtrelay.toml")),
            timeout=60,
        )
        for host in RELAYS:
            rig.start_relay(host, wait=False)
        for host in RELAYS:
            rig.wait_ready(host)
        rig.start_lb()
        yield rig
    finally:
        rig.close()


class Clients:
    """The client host's driver (``clients.py``) as a test sees it: commands and reports."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.reports: list[dict[str, Any]] = []
        self._answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next = 0
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, rig: Cluster) -> Clients:
        with (rig.workdir / "clients.log").open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                *rig.in_host("client", sys.executable, str(Path(__file__).with_name("clients.py"))),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        clients = cls(proc)
        await clients.wait_for(lambda r: r.get("ready") is True, timeout=30)
        return clients

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            message = json.loads(line)
            answer = self._answers.pop(message.pop("id", -1), None)
            if answer is not None:
                answer.set_result(message)
            else:
                self.reports.append(message)
            self._changed.set()

    async def send(self, op: str, **args: Any) -> asyncio.Future[dict[str, Any]]:
        """Start one command in the client host; its answer, to await later."""
        assert self.proc.stdin is not None
        self._next += 1
        answer = self._answers[self._next] = asyncio.get_running_loop().create_future()
        self.proc.stdin.write(json.dumps({"id": self._next, "op": op, **args}).encode() + b"\n")
        await self.proc.stdin.drain()
        return answer

    async def ask(self, op: str, timeout: float = 60.0, **args: Any) -> dict[str, Any]:
        """Run one command in the client host; its answer."""
        answer = await self.send(op, **args)
        async with asyncio.timeout(timeout):
            return await answer

    async def wait_for(
        self, found: Callable[[dict[str, Any]], bool], *, count: int = 1, timeout: float = 60.0
    ) -> list[dict[str, Any]]:
        """Until ``count`` reports satisfy ``found`` (bounded); those reports."""
        async with asyncio.timeout(timeout):
            while True:
                hits = [r for r in self.reports if found(r)]
                if len(hits) >= count:
                    return hits
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            async with asyncio.timeout(15):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


def eventually(check: Callable[[], Any], *, timeout: float = 20.0) -> Any:
    """``check()``'s first truthy value, asked until ``timeout`` (the ledger writes in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)
