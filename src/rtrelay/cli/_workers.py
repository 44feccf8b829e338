"""``rtrelay serve --workers N``: a master that keeps N worker processes on one port.

SO_REUSEPORT lets N processes accept on the same port, but someone must restart a
worker that dies, and no worker may outlive the master: an orphan keeps serving with
nobody left to stop it, drain it or restart the others.

- **A worker watches its master** through the pipe that multiprocessing's ``spawn``
  start keeps open between them (``parent_process().sentinel``): end-of-file means the
  master is gone, however it died (SIGKILL included). Unlike polling ``getppid()`` it
  needs no interval and cannot be fooled by a subreaper adopting the orphan. The
  orphan then drains as on SIGTERM and exits after at most ``ORPHAN_GRACE`` seconds.
- **The master restarts a worker that dies**, after a backoff that doubles from
  ``BACKOFF_FIRST`` to ``BACKOFF_MAX`` and resets once a worker has stayed up
  ``STABLE_AFTER`` seconds; after ``MAX_QUICK_DEATHS`` quick deaths in a row of one
  worker it stops everything and exits 1 (a worker that cannot start will not start
  the next time either, and a supervisor above us should see the failure).
- **Every exit path of the master stops every worker** (SIGTERM, SIGINT, an
  exception): each gets SIGTERM and drains; whoever is still alive after the drain
  window plus ``STOP_MARGIN`` is killed. A second SIGTERM/SIGINT kills at once.
- **SIGHUP is passed on** to every worker, which reloads its TLS certificate. Only to
  a worker that has said it is *armed* (it ignores SIGHUP from its first line on):
  before that, SIGHUP's default action would kill it, and it has not read the
  certificate yet anyway, so it will read the new files when it does.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import connection
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any, Final

from rtrelay import config
from rtrelay.log import configure_logging, edge_log

__all__ = [
    "BACKOFF_FIRST",
    "BACKOFF_MAX",
    "MAX_QUICK_DEATHS",
    "ORPHAN_GRACE",
    "STABLE_AFTER",
    "STOP_MARGIN",
    "WorkerRun",
    "restart_delay",
    "supervise",
]

ORPHAN_GRACE: Final = 1.5
"""Seconds an orphaned worker may drain before it exits anyway (the promise is 2 s)."""
BACKOFF_FIRST: Final = 0.5
BACKOFF_MAX: Final = 30.0
STABLE_AFTER: Final = 30.0
"""A worker that served this long before dying is restarted as if for the first time."""
MAX_QUICK_DEATHS: Final = 8
STOP_MARGIN: Final = 15.0
"""Beyond the drain window: runner clean-up (5 s) and the ledger writer's final flush."""
EXIT_ORPHANED: Final = 70

WorkerRun = Callable[..., int]
"""``run(settings, *, demo)``: serve in this process until SIGTERM; module-level (pickled)."""


def restart_delay(quick_deaths: int) -> float:
    """Seconds before restarting a worker that died for the ``quick_deaths``-th time in a row."""
    return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, quick_deaths - 1)))


@dataclass(slots=True)
class _Slot:
    """One of the N places a worker runs in; its process changes across restarts."""

    index: int
    process: BaseProcess | None = None
    started: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = None
    armed: Any = None
    """The worker's ``multiprocessing.Event``, set once a SIGHUP can no longer kill it."""


class _Signals:
    """SIGTERM/SIGINT (stop) and SIGHUP (reload) recorded and turned into a readable pipe
    the master can wait on."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.reloads = 0
        """SIGHUPs not yet passed on to the workers."""
        self._r, self._w = os.pipe()
        os.set_blocking(self._w, False)
        self._previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        }

    @property
    def fd(self) -> int:
        return self._r

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.reloads += 1
        else:
            self.received.append(signum)
        with contextlib.suppress(BlockingIOError):
            os.write(self._w, b"\0")

    def drain_pipe(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.set_blocking(self._r, False)
            os.read(self._r, 512)

    def close(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        os.close(self._r)
        os.close(self._w)


def supervise(settings: config.Settings, run: WorkerRun, *, demo: bool = False) -> int:
    """Run ``settings.server.workers`` workers until SIGTERM/SIGINT; return the exit status.

    Args:
        settings: passed to every worker.
        run: the worker's body, a module-level function (it is pickled for ``spawn``).
        demo: the first worker (and only its first start) prints the demo banner, which
            makes a new demo key: a restart must not revoke the key users were given.
    """
    ctx = multiprocessing.get_context("spawn")
    slots = [_Slot(index=i) for i in range(settings.server.workers)]
    signals = _Signals()

    def start(slot: _Slot, *, banner: bool) -> None:
        slot.armed = ctx.Event()
        slot.process = ctx.Process(
            target=_worker,
            args=(run, settings, slot.armed),
            kwargs={"demo": banner},
            name=f"rtrelay-worker-{slot.index}",
        )
        slot.process.start()
        slot.started = time.monotonic()
        slot.restart_at = None

    try:
        for slot in slots:
            start(slot, banner=demo and slot.index == 0)
        while not signals.received:
            now = time.monotonic()
            for slot in slots:
                if slot.restart_at is not None and slot.restart_at <= now:
                    start(slot, banner=False)
                    edge_log.info(
                        "worker restarted",
                        extra={
                            "event": "worker_restarted",
                            "worker": slot.index,
                            "pid": _pid(slot),
                        },
                    )
            waiting = [s.restart_at - now for s in slots if s.restart_at is not None]
            sentinels = [s.process.sentinel for s in slots if s.process is not None]
            connection.wait([*sentinels, signals.fd], timeout=max(0.0, min(waiting, default=60)))
            signals.drain_pipe()
            if signals.received:
                break
            if signals.reloads:
                signals.reloads = 0
                _pass_reload_on(slots)
            for slot in slots:
                if slot.process is None or slot.process.is_alive():
                    continue
                if not _schedule_restart(slot, settings):
                    return 1
        edge_log.info(
            "stopping workers",
            extra={"event": "stopping_workers", "signal": signal.Signals(signals.received[0]).name},
        )
        return 0
    finally:
        _stop_all(slots, signals, settings.timeouts.drain)
        signals.close()


def _pass_reload_on(slots: list[_Slot]) -> None:
    """SIGHUP to every armed worker (see the module docstring)."""
    told = []
    for slot in slots:
        process = slot.process
        if process is None or process.pid is None or not slot.armed.is_set():
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGHUP)
            told.append(process.pid)
    edge_log.info("SIGHUP passed on to the workers", extra={"event": "sighup", "pids": told})


def _schedule_restart(slot: _Slot, settings: config.Settings) -> bool:
    """Reap a dead worker and plan its restart; ``False`` when it keeps dying."""
    assert slot.process is not None
    process, slot.process = slot.process, None
    process.join()
    uptime = time.monotonic() - slot.started
    slot.quick_deaths = 1 if uptime >= STABLE_AFTER else slot.quick_deaths + 1
    _forget_metrics(process.pid)
    fields = {
        "worker": slot.index,
        "pid": process.pid,
        "exitcode": process.exitcode,
        "uptime_s": round(uptime, 3),
        "deaths_in_a_row": slot.quick_deaths,
    }
    process.close()
    if slot.quick_deaths > MAX_QUICK_DEATHS:
        edge_log.error("worker keeps dying; stopping", extra={"event": "worker_gave_up", **fields})
        return False
    delay = restart_delay(slot.quick_deaths)
    slot.restart_at = time.monotonic() + delay
    edge_log.warning("worker died", extra={"event": "worker_died", "restart_in_s": delay, **fields})
    return True


def _stop_all(slots: list[_Slot], signals: _Signals, drain: float | None) -> None:
    """SIGTERM every live worker, wait for their drain, then kill whoever is left."""
    alive = [s.process for s in slots if s.process is not None and s.process.is_alive()]
    for process in alive:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
    deadline = time.monotonic() + (drain or 0.0) + STOP_MARGIN
    signals_seen = len(signals.received)
    while alive:
        left = deadline - time.monotonic()
        if left <= 0 or len(signals.received) > signals_seen:
            break  # out of time, or asked twice: no more waiting
        connection.wait([*(p.sentinel for p in alive), signals.fd], timeout=left)
        signals.drain_pipe()
        alive = [p for p in alive if p.is_alive()]
    for process in alive:
        edge_log.warning("worker killed", extra={"event": "worker_killed", "pid": process.pid})
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    for slot in slots:
        if slot.process is not None:
            slot.process.join()
            _forget_metrics(slot.process.pid)
            slot.process.close()
            slot.process = None


def _forget_metrics(pid: int | None) -> None:
    """A dead worker's live gauges (active sessions) must leave the summed figures."""
    if pid is None or not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def _pid(slot: _Slot) -> int | None:
    return None if slot.process is None else slot.process.pid


def _worker(run: WorkerRun, settings: config.Settings, armed: Any, *, demo: bool) -> None:
    """A worker's entry point: survive SIGHUP, watch the master, then serve."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # serve() installs the reload
    armed.set()
    configure_logging(settings.logging.level, settings.logging.format)
    _watch_master()
    raise SystemExit(run(settings, demo=demo))


def _watch_master() -> None:
    """Drain and exit when the master's end of our pipe closes (see the module docstring)."""
    parent = multiprocessing.parent_process()
    if parent is None:  # pragma: no cover - only ever called in a spawned worker
        return
    fd = parent.sentinel

    def watch() -> None:
        while True:
            try:
                readable, _, _ = select.select([fd], [], [])
            except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                continue
            if readable:
                break
        edge_log.warning(
            "master process gone; stopping",
            extra={"event": "master_gone", "grace_s": ORPHAN_GRACE},
        )
        os.kill(os.getpid(), signal.SIGTERM)  # serve() drains as on any SIGTERM
        time.sleep(ORPHAN_GRACE)
        os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, name="rtrelay-master-watch", daemon=True).start()
