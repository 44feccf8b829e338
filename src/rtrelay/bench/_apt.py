"""Install a Debian package the benchmark needs (nginx, valgrind), saying so as it happens.

The harness installs what a target or a mode needs the first time it is needed, so a
fresh machine runs the whole benchmark with one command; ``--no-install`` forbids it
and the caller then reports the missing tool instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable

__all__ = ["PackageUnavailable", "ensure_package"]


class PackageUnavailable(RuntimeError):
    """A tool is missing and could not (or may not) be installed."""


def ensure_package(package: str, find: Callable[[], str | None], *, install: bool) -> str:
    """What ``find`` finds; with ``install``, ``apt-get install -y <package>`` first if nothing.

    Args:
        package: the Debian package that provides the tool.
        find: the tool's path, or ``None`` while it is missing.
        install: may the package be installed.

    Raises:
        PackageUnavailable: missing, and installing was not allowed or did not provide it.
    """
    found = find()
    if found is not None:
        return found
    if not install:
        raise PackageUnavailable(
            f"{package} is not installed (apt-get install -y {package}; --no-install given)"
        )
    if shutil.which("apt-get") is None:
        raise PackageUnavailable(f"{package} is not installed and apt-get is not available")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install_cmd = ["apt-get", "install", "-y", package]
    # A fresh container has no package lists yet: update once if the first try fails.
    for command in (install_cmd, ["apt-get", "update"], install_cmd):
        print(f"rtrelay bench: {package} is missing; running: {' '.join(command)}", file=sys.stderr)
        done = subprocess.run(command, env=env, check=False, stdout=subprocess.DEVNULL)
        if command is install_cmd and done.returncode == 0:
            break
    found = find()
    if found is None:
        raise PackageUnavailable(f"apt-get install -y {package} did not install it")
    return found
