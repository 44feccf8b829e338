"""atheris target: no client frame forwards a checked event unchecked, in any protocol.

pip install 'rtrelay[fuzz]'
python fuzz/fuzz_taps.py -atheris_runs=1000000 "$(mktemp -d)" fuzz/seeds/taps
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from rtrelay.bridge.taps import (
        CHECKED_CLIENT_EVENTS,
        LIVE_CHECKED_CLIENT_EVENTS,
        TRANSLATION_APPEND,
        TRANSLATION_CHECKED_CLIENT_EVENTS,
        client_tap,
        live_client_tap,
        translation_client_tap,
    )
    from rtrelay.errors import InvalidEvent

from readings import possible_types

TAPS = (
    (client_tap, CHECKED_CLIENT_EVENTS),
    (live_client_tap, LIVE_CHECKED_CLIENT_EVENTS),
    # translation's appends are checked too: the meter bills the audio they carry
    (translation_client_tap, TRANSLATION_CHECKED_CLIENT_EVENTS | {TRANSLATION_APPEND}),
)


def test_one_input(frame: bytes) -> None:
    types = possible_types(frame)
    for client_tap_of, checked in TAPS:
        tap = client_tap_of(frame)
        if isinstance(tap, InvalidEvent):
            continue  # refused: never forwarded
        if tap is None:
            assert not types & checked, frame
        else:
            assert types == {tap[0]}, frame


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
