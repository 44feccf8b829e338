"""Fixtures shared by every test directory, and the check that no test leaves a process behind."""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from pathlib import Path
from typing import Final

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).parent))

pytest_plugins = ["chromium", "store_fixtures"]

SESSION_MARK: Final = "RTRELAY_TEST_SESSION"
"""Set in this process's environment, so every process a test starts inherits it: an orphan
(say a worker whose master was killed) is no longer our descendant, but it still carries this."""
LEFTOVER_GRACE: Final = 5.0
"""Seconds a process still shutting down at the end of the session gets before it counts."""


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault(SESSION_MARK, uuid.uuid4().hex)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a process a test started is still alive; name it, then kill it."""
    leftovers = _wait_for_exit(_started_by_tests(), LEFTOVER_GRACE)
    if not leftovers:
        return
    lines = [_describe(p) for p in leftovers]
    for process in leftovers:
        with contextlib.suppress(psutil.Error):
            process.kill()
    _wait_for_exit(leftovers, LEFTOVER_GRACE)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    header = f"{len(lines)} process(es) started by the tests were still alive (now killed)"
    if reporter is not None:
        reporter.write("\n")
        reporter.write_sep("=", header, red=True)
        for line in lines:
            reporter.write_line(line)
    else:
        print(header, *lines, sep="\n", file=sys.stderr)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _started_by_tests() -> list[psutil.Process]:
    me = psutil.Process()
    found = {p.pid: p for p in me.children(recursive=True)}
    mark = os.environ.get(SESSION_MARK)
    for process in psutil.process_iter():
        if process.pid == me.pid or process.pid in found:
            continue
        try:
            if process.environ().get(SESSION_MARK) == mark:
                found[process.pid] = process
        except psutil.Error:  # another user's process, or gone already
            continue
    return list(found.values())


def _wait_for_exit(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return alive


def _describe(process: psutil.Process) -> str:
    try:
        command = " ".join(process.cmdline())[:160]
        listening = sorted(
            c.laddr.port for c in process.net_connections("inet") if c.status == psutil.CONN_LISTEN
        )
    except psutil.Error:
        return f"  pid {process.pid}: (gone)"
    ports = f" listening on {', '.join(map(str, listening))}" if listening else ""
    return f"  pid {process.pid}{ports}: {command}"
