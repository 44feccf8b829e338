"""Every module imports on its own (no cycles) and declares a sorted ``__all__``."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pkgutil
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


async def test_each_module_imports_in_a_fresh_interpreter() -> None:
    limit = asyncio.Semaphore(4)

    async def check(name: str) -> tuple[str, int, bytes]:
        async with limit:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-W",
                "error",
                "-c",
                f"import {name}",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await proc.communicate()
            return name, proc.returncode or 0, err

    results = await asyncio.gather(*(check(name) for name in MODULES))
    failures = {name: err.decode()[-500:] for name, code, err in results if code}
    assert not failures


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
