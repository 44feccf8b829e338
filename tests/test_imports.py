"""Every module imports on its own (no cycles) and declares a sorted ``__all__``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import pytest

import rtrelay


def all_modules() -> list[str]:
    names = ["rtrelay"]
    for info in pkgutil.walk_packages(rtrelay.__path__, "rtrelay."):
        if ".migrations." in info.name or info.name.endswith(".migrations"):
            continue  # Alembic scripts are loaded by Alembic, not imported
        names.append(info.name)
    return sorted(names)


MODULES = all_modules()


def test_each_module_imports_first_without_a_cycle() -> None:
    """Import every module as the first rtrelay module loaded, warnings as errors.

    One interpreter, with ``rtrelay.*`` dropped from ``sys.modules`` between imports:
    a cycle among rtrelay's modules shows exactly as in a fresh process, without
    paying for aiohttp or SQLAlchemy again each time.
    """
    script = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}:\n"
        "    for loaded in [m for m in sys.modules if m.split('.')[0] == 'rtrelay']:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("name", [m for m in MODULES if not m.split(".")[-1].startswith("_")])
def test_public_modules_declare_all(name: str) -> None:
    """Order is ruff's business (RUF022); here: present, and naming what exists."""
    module = importlib.import_module(name)
    own = [
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and getattr(value, "__module__", None) == name
        and (inspect.isfunction(value) or inspect.isclass(value))
    ]
    exported = getattr(module, "__all__", None)
    if exported is None:
        assert not own, f"{name} defines {own} but has no __all__"
        return
    for symbol in exported:
        assert hasattr(module, symbol), f"{name}.__all__ names a missing {symbol}"
