"""Child processes of a benchmark: each target in its own process group, always stopped.

Every target runs in a process of its own so that its CPU time and memory can be read
from the kernel (``psutil``) without counting anyone else's work. Children start in a
new session (their own process group), so stopping one also stops whatever it spawned,
and a ``Children`` registry kills every group it still holds when the run ends, on
success, error or Ctrl-C alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self

import psutil

__all__ = [
    "Child",
    "ChildFailed",
    "Children",
    "Completed",
    "ResourceMeter",
    "Usage",
    "free_port",
    "run_command",
]

STOP_TIMEOUT: Final = 5.0
_POLL: Final = 0.05


def free_port() -> int:
    """A port free right now, for children that cannot report an ephemeral one back."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ChildFailed(RuntimeError):
    """A child exited or never became ready; the message carries the end of its log."""


@dataclass(frozen=True, slots=True)
class Completed:
    """A short command's exit status and output (kept in memory: it may hold a secret)."""

    returncode: int
    stdout: bytes
    stderr: bytes


async def run_command(
    argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None
) -> Completed:
    """Run a short command to its end; killed (and ``TimeoutError``) after ``timeout`` s."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Completed(proc.returncode, out, err)


class Child:
    """One child process with its output in ``log_path``.

    Args:
        name: what the process is, for messages.
        argv: the command.
        log_path: stdout and stderr go here (a file, never a pipe that could fill up).
        env: the environment (default: ours).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self._env,
            cwd=self._cwd,
            start_new_session=True,  # its own process group: stop() reaches its children too
        )

    async def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """Wait until the log shows ``pattern`` (a regex) and return the match.

        Raises:
            ChildFailed: the process exited first, or ``timeout`` passed.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.read_log())
            if match is not None:
                return match
            if not self.running:
                raise ChildFailed(f"{self.name} exited before it was ready:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise ChildFailed(f"{self.name} not ready after {timeout:g} s:\n{self.log_tail()}")
            await asyncio.sleep(_POLL)

    def read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.read_log().splitlines()[-lines:])

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the process group, then SIGKILL it if it has not exited in ``timeout``."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(proc.wait, timeout)
        self.kill()

    def kill(self) -> None:
        """SIGKILL whatever is left of the group, at once; safe to call twice."""
        proc = self._proc
        if proc is None:
            return
        self._signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_TIMEOUT)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _signal(self, signum: signal.Signals) -> None:
        assert self._proc is not None
        # The group outlives its leader when the leader forked workers; signal it anyway.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signum)


class Children:
    """Every child of one run; leaving the ``async with`` stops them all, whatever happened."""

    def __init__(self) -> None:
        self._children: list[Child] = []

    def add(self, child: Child) -> Child:
        self._children.append(child)
        return child

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            # Stop in reverse order: proxies before the provider they talk to.
            for child in reversed(self._children):
                await child.stop()
        finally:
            self.kill_all()

    def kill_all(self) -> None:
        """The last resort (also called when the loop itself is being torn down)."""
        for child in reversed(self._children):
            child.kill()


@dataclass(frozen=True, slots=True)
class Usage:
    """CPU seconds used so far and resident memory now, of one process tree."""

    cpu_s: float
    rss_bytes: int


class ResourceMeter:
    """CPU time and RSS of a process (and its descendants), read from the kernel.

    Args:
        pid: the process.
        descendants: count its children too (a server that forks workers); off for the
            benchmark's own process, whose children are the targets.
    """

    def __init__(self, pid: int, *, descendants: bool = True) -> None:
        self._root = psutil.Process(pid)
        self._descendants = descendants

    def read(self) -> Usage:
        cpu = 0.0
        rss = 0
        for proc in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied), proc.oneshot():
                times = proc.cpu_times()
                cpu += times.user + times.system
                rss += proc.memory_info().rss
        return Usage(cpu, rss)

    def _tree(self) -> list[psutil.Process]:
        if not self._descendants:
            return [self._root]
        try:
            return [self._root, *self._root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
