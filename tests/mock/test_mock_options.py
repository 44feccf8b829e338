"""MockOptions validation and the ``rtrelay mock`` command line."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from rtrelay.cli import mock as cli_mock
from rtrelay.mock import MockOptions


@pytest.mark.parametrize(
    "bad",
    [
        {"dialect": "v2"},
        {"realtime_pacing": -1},
        {"reply_audio_ms": 0},
        {"audio_chunk_ms": 5},
        {"audio_chunk_ms": 20_000},
        {"refuse_status": 101},
        {"drop_after_events": -1},
        {"close_code": 1006},
        {"close_code": 1005},
        {"close_reason": "x" * 124},
        {"max_session_seconds": 0},
    ],
)
def test_invalid_options_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        MockOptions(**bad)  # type: ignore[arg-type]


def test_options_are_frozen_values() -> None:
    options = MockOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.dialect = "beta"  # type: ignore[misc]
    assert dataclasses.replace(options, ga_only=True).ga_only


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli_mock.register(parser.add_subparsers())
    return parser.parse_args(["mock", *argv])


def test_command_line_maps_onto_options() -> None:
    args = parse(
        [
            "--dialect", "beta", "--ga-only", "--api-key", "a", "--api-key", "b",
            "--pacing", "0", "--max-session-seconds", "30", "--refuse-status", "503",
            "--refuse-body", "{}", "--stall-handshake", "1.5", "--drop-after-events", "3",
            "--close-after-events", "4", "--close-code", "4001", "--close-reason", "bye",
            "--malformed-after-events", "5",
        ]
    )  # fmt: skip
    assert args.func is cli_mock.run
    assert cli_mock.options_from_args(args) == MockOptions(
        dialect="beta",
        ga_only=True,
        api_keys=frozenset({"a", "b"}),
        realtime_pacing=0.0,
        max_session_seconds=30.0,
        refuse_status=503,
        refuse_body="{}",
        stall_handshake=1.5,
        drop_after_events=3,
        close_after_events=4,
        close_code=4001,
        close_reason="bye",
        malformed_after_events=5,
    )
    defaults = parse([])
    assert (defaults.host, defaults.port) == ("127.0.0.1", 8765)
    assert cli_mock.options_from_args(defaults) == MockOptions()


def test_bad_command_line_values_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_mock.run(parse(["--close-code", "1006"])) == 2
    assert "close_code" in capsys.readouterr().err
