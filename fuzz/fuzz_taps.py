"""atheris target: no client frame forwards a checked event unchecked.

pip install 'rtrelay[fuzz]'
python fuzz/fuzz_taps.py -atheris_runs=1000000 "$(mktemp -d)" fuzz/seeds/taps
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from rtrelay.bridge.taps import CHECKED_CLIENT_EVENTS, client_tap
    from rtrelay.errors import InvalidEvent

from readings import possible_types


def test_one_input(frame: bytes) -> None:
    tap = client_tap(frame)
    if isinstance(tap, InvalidEvent):
        return  # refused: never forwarded
    types = possible_types(frame)
    if tap is None:
        assert not types & CHECKED_CLIENT_EVENTS, frame
    else:
        assert types == {tap[0]}, frame


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
