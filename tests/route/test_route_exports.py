"""Every routing module and ``rtrelay channels``: a true ``__all__``, no import cycles."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import rtrelay.route

MODULES = sorted(
    [
        "rtrelay.route",
        *(m.name for m in pkgutil.walk_packages(rtrelay.route.__path__, "rtrelay.route.")),
        "rtrelay.cli.channels",
    ]
)


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert len(set(exported)) == len(exported)
    for attr in exported:
        assert hasattr(module, attr), f"{name}.__all__ names missing {attr!r}"


def test_each_module_imports_first_without_a_cycle() -> None:
    script = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}:\n"
        "    for loaded in [m for m in sys.modules if m.split('.')[0] == 'rtrelay']:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
