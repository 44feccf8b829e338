"""atheris target: any TOML document loads or fails with a ConfigError naming the field.

python fuzz/fuzz_config.py -atheris_runs=1000000 "$(mktemp -d)" fuzz/seeds/config
"""

from __future__ import annotations

import sys
import tomllib

import atheris

with atheris.instrument_imports():
    from rtrelay import config


def test_one_input(data: bytes) -> None:
    try:
        raw = tomllib.loads(data.decode("utf-8", errors="replace"))
    except (tomllib.TOMLDecodeError, RecursionError):
        return
    try:
        config.from_mapping(raw, {})
    except config.ConfigError as exc:
        if not str(exc):
            raise AssertionError("a ConfigError must name what is wrong") from exc


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
