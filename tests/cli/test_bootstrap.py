"""``scripts/bootstrap`` (run by scripts/demo and scripts/test) says what it does while it
installs, and nothing when everything is in place: the first scripts/demo used to sit
silent for a minute."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bootstrap(tree: Path) -> str:
    done = subprocess.run(
        ["bash", str(tree / "scripts" / "bootstrap")],
        env={
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "PYTHON": sys.executable,
            "RTRELAY_BOOTSTRAP_PIP": "true",  # no real install: only what it says is checked
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout == ""
    return done.stderr


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "bootstrap", tmp_path / "scripts" / "bootstrap")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    return tmp_path


def test_the_first_run_says_what_it_installs_then_later_runs_are_silent(tree: Path) -> None:
    first = _bootstrap(tree).splitlines()
    assert first[0].startswith("bootstrap: creating the virtualenv .venv with Python 3.")
    assert first[1] == (
        "bootstrap: installing rtrelay and its pinned dependencies into .venv (once; about a "
        "minute)"
    )
    assert first[2].startswith("bootstrap: installed in ")
    assert first[2].endswith("s: .venv/bin/rtrelay (`. .venv/bin/activate` puts it on PATH)")
    assert _bootstrap(tree) == ""


def test_a_changed_pyproject_is_named_as_the_reason_to_install_again(tree: Path) -> None:
    _bootstrap(tree)
    (tree / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "2"\n')
    said = _bootstrap(tree).splitlines()
    assert said[0] == "bootstrap: pyproject.toml changed: updating rtrelay's dependencies in .venv"
