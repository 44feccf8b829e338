"""Count a target's instructions with callgrind, window by window.

CPU seconds per frame on a shared VM move by up to 40 % with host steal; the number of
instructions a process executes for the same work does not. The target runs under
``valgrind --tool=callgrind --instr-atstart=no``: nothing is counted (and it runs only
a few times slower) until ``callgrind_control -i on <pid>`` at a window's start; at its
end ``callgrind_control -d <label>`` writes the counts since the start to
``<out>.<n>`` and ``-i off`` stops counting again. Start-up, warm-up and teardown are
never counted.

Events: ``Ir`` (user-space instructions, the figure), and ``sysCount`` (system calls,
``--collect-systime``): callgrind sees no instruction inside the kernel, and about half
of the CPU time of forwarding a frame is the kernel's ``read``/``write``, so the system
calls per frame stand in for that half. (Their times, also collected, are wall-clock
and as noisy as everything else; they are not reported.)

Valgrind is the Debian ``valgrind`` package, installed like nginx the first time it is
needed unless ``--no-install``.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from rtrelay.bench._apt import PackageUnavailable, ensure_package
from rtrelay.bench._procs import run_command

__all__ = [
    "CONTROL_TIMEOUT",
    "Callgrind",
    "CallgrindDump",
    "CallgrindFailed",
    "Placement",
    "Valgrind",
    "ValgrindUnavailable",
    "ensure_valgrind",
    "parse_dump",
]

CONTROL_TIMEOUT: Final = 120.0
"""Seconds one ``callgrind_control`` command may take (a target busy under valgrind is slow
to reach the point where it serves the request)."""


class ValgrindUnavailable(RuntimeError):
    """valgrind (with callgrind_control) is not installed and could not be installed."""


class CallgrindFailed(RuntimeError):
    """``callgrind_control`` did not do what it was asked, or wrote no dump."""


@dataclass(frozen=True, slots=True)
class Valgrind:
    """The installed tools: ``valgrind`` runs a target, ``callgrind_control`` steers it."""

    valgrind: str
    control: str

    def argv(self, out_file: Path, *, wrap: Sequence[str] = ()) -> tuple[str, ...]:
        """The prefix that runs a command under callgrind, counting nothing until told.

        Args:
            wrap: what valgrind itself runs under (``Placement.target``).
        """
        return (
            *wrap,
            self.valgrind,
            "--tool=callgrind",
            "--instr-atstart=no",
            "--collect-systime=nsec",
            f"--callgrind-out-file={out_file}",
        )


def _find() -> str | None:
    valgrind, control = shutil.which("valgrind"), shutil.which("callgrind_control")
    return valgrind if valgrind is not None and control is not None else None


def ensure_valgrind(*, install: bool) -> Valgrind:
    """valgrind and callgrind_control; with ``install``, ``apt-get install -y valgrind`` first.

    Raises:
        ValgrindUnavailable: missing, and installing was not allowed or failed.
    """
    try:
        valgrind = ensure_package("valgrind", _find, install=install)
    except PackageUnavailable as exc:
        raise ValgrindUnavailable(str(exc)) from exc
    control = shutil.which("callgrind_control")
    assert control is not None  # _find saw it
    return Valgrind(valgrind, control)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the provider and a counted target run, so their frames meet the same way.

    A relay's count depends on how the provider's bursts (``response.created`` …
    ``content_part.added``; the closing ``.done`` events) reach it: whole in one
    ``read()``, or split because the provider was preempted mid-burst by anything else
    on the machine (nginx's count per frame moved by 3 % with the load). So both run on
    one CPU, the provider under ``SCHED_FIFO``: the woken relay cannot run before the
    provider has written the whole burst and blocked. The target also runs without
    address-space randomisation (``setarch -R``): object addresses, and so identity
    hashes and dict and set layouts, then repeat too.

    Args:
        provider: the provider's prefix (``chrt -f 1 taskset -c N``).
        target: valgrind's prefix (``taskset -c N setarch <arch> -R``).
        notes: what could not be arranged (no ``chrt`` permission, missing tools).
    """

    provider: tuple[str, ...]
    target: tuple[str, ...]
    notes: tuple[str, ...]

    @classmethod
    def arrange(cls) -> Placement:
        """One CPU for both, FIFO for the provider, as far as this machine allows."""
        notes: list[str] = []
        cpu = max(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        pin: tuple[str, ...] = ()
        if cpu is not None and shutil.which("taskset") is not None:
            pin = ("taskset", "-c", str(cpu))
        else:
            notes.append("not pinned to one CPU (no taskset)")
        fifo: tuple[str, ...] = ()
        chrt = shutil.which("chrt")
        allowed = chrt is not None and (
            subprocess.run([chrt, "-f", "1", "true"], capture_output=True, check=False).returncode
            == 0
        )
        if allowed:
            fifo = ("chrt", "-f", "1")
        else:
            notes.append("provider not SCHED_FIFO (chrt missing or not permitted)")
        fixed: tuple[str, ...] = ()
        if shutil.which("setarch") is not None:
            fixed = ("setarch", platform.machine(), "-R")
        else:
            notes.append("address space randomised (no setarch)")
        return cls(provider=(*fifo, *pin), target=(*pin, *fixed), notes=tuple(notes))


@dataclass(frozen=True, slots=True)
class CallgrindDump:
    """The counts of one dump: event name -> total (``Ir``, ``sysCount``, …)."""

    trigger: str
    events: dict[str, int]

    @property
    def instructions(self) -> int:
        return self.events["Ir"]

    @property
    def syscalls(self) -> int | None:
        return self.events.get("sysCount")


def parse_dump(text: str) -> CallgrindDump:
    """The header of a callgrind output file: its trigger, and the ``totals:`` of each event.

    ``totals:`` (the sum of every cost line) rather than ``summary:``, which callgrind
    3.19 writes wrong (wrapped below zero) for a dump taken after ``-i off``.

    Raises:
        ValueError: no ``events:`` line, or no totals for them.
    """
    names: list[str] | None = None
    trigger = ""
    totals: list[int] | None = None
    summary: list[int] | None = None
    for line in text.splitlines():
        if line.startswith("events:") and names is None:
            names = line.split(":", 1)[1].split()
        elif line.startswith("desc: Trigger:"):
            trigger = line.split(":", 2)[2].strip()
        elif line.startswith("totals:"):
            totals = [int(v) for v in line.split(":", 1)[1].split()]
        elif line.startswith("summary:"):
            summary = [int(v) for v in line.split(":", 1)[1].split()]
    values = totals if totals is not None else summary
    if names is None or values is None:
        raise ValueError("not a callgrind output file: no events and totals")
    values += [0] * (len(names) - len(values))  # trailing zero costs may be left out
    return CallgrindDump(trigger, dict(zip(names, values, strict=False)))


class Callgrind:
    """Windows of counting in one process running under ``Valgrind.argv(out_file)``.

    Args:
        tools: the installed valgrind.
        pid: the process (valgrind runs the program in its own pid).
        out_file: the ``--callgrind-out-file`` it was started with.
    """

    def __init__(self, tools: Valgrind, pid: int, out_file: Path) -> None:
        self._tools = tools
        self._pid = pid
        self._out = out_file

    async def begin(self) -> None:
        """Start counting (from zero).

        Raises:
            CallgrindFailed: the process did not answer (not running under callgrind?).
        """
        await self._control("-i", "on")
        await self._control("-z")

    async def end(self, label: str) -> CallgrindDump:
        """Stop counting; the counts since ``begin()``, written under ``label``.

        Dumped while counting is on, then switched off; ``label`` must be unique in this
        process (it names the dump to read back).

        Raises:
            CallgrindFailed: the process did not answer, or no dump has that label.
        """
        await self._control("-d", label)
        await self._control("-i", "off")
        want = f"dump {label}"
        for path in sorted(self._out.parent.glob(self._out.name + ".*")):
            text = await asyncio.to_thread(path.read_text, errors="replace")
            dump = parse_dump(text)
            if dump.trigger == want:
                return dump
        raise CallgrindFailed(f"callgrind wrote no dump {label!r} next to {self._out}")

    async def _control(self, *args: str) -> None:
        argv = (self._tools.control, *args, str(self._pid))
        done = await run_command(argv, timeout=CONTROL_TIMEOUT)
        text = (done.stdout + done.stderr).decode(errors="replace")
        if done.returncode != 0 or "OK." not in text:
            raise CallgrindFailed(f"callgrind_control {' '.join(args)} {self._pid}: {text.strip()}")
