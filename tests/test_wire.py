"""``rtrelay.wire``: the handshake vocabulary, and the leaf modules everything may import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rtrelay.wire import is_beta_header

LEAVES = ("rtrelay.config", "rtrelay.errors", "rtrelay.tasks", "rtrelay.wire")


@pytest.mark.parametrize("name", LEAVES)
def test_a_leaf_module_imports_nothing_else_from_rtrelay(name: str) -> None:
    """edge, gate, route, mock, probe and the client all import these: they import none of them."""
    script = (
        "import importlib, sys\n"
        f"importlib.import_module({name!r})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rtrelay'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == repr(sorted({"rtrelay", name}))


@pytest.mark.parametrize(
    ("value", "beta"),
    [
        ("realtime=v1", True),
        ("Realtime=V1", True),
        ("assistants=v2, realtime=v1", True),
        (" realtime=v1 ,", True),
        ("assistants=v2", False),
        ("realtime=v2", False),
        ("realtime=v1x", False),
        ("", False),
    ],
)
def test_beta_header_values(value: str, beta: bool) -> None:
    assert is_beta_header(value) is beta
