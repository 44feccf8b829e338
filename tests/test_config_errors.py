"""Config errors a newcomer can act on: the file's line, the accepted forms, "did you mean".

The rule for text that looks like a number: in the file a value must have its TOML type
(``port = "8091"`` is refused, with the fix); an environment variable is text, so
``RTRELAY_SERVER_PORT=8091`` is parsed. ``"off"`` turns an optional setting off in both.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rtrelay import config

BASE = """\
[server]
host = "127.0.0.1"
port = 8091

[[channels]]
name = "first"
models = ["gpt-realtime"]

[[channels]]
name = "second"
models = ["gpt-realtime-mini"]
"""


def _error(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    path = tmp_path / "rtrelay.toml"
    path.write_text(text)
    with pytest.raises(config.ConfigError) as caught:
        config.load(path, environ or {})
    return str(caught.value).replace(str(path), "rtrelay.toml")


def test_a_quoted_port_in_the_file_is_refused_with_its_line_and_the_fix(tmp_path: Path) -> None:
    message = _error(tmp_path, BASE.replace("port = 8091", 'port = "8091"'))
    assert message == (
        "rtrelay.toml:3: server.port: expected int, got the string '8091': "
        "a number is written without quotes (port = 8091)"
    )


def test_the_same_port_from_the_environment_is_text_and_parsed(tmp_path: Path) -> None:
    path = tmp_path / "rtrelay.toml"
    path.write_text(BASE)
    assert config.load(path, {"RTRELAY_SERVER_PORT": "9000"}).server.port == 9000


def test_an_environment_value_that_is_no_number_names_its_variable(tmp_path: Path) -> None:
    message = _error(tmp_path, BASE, {"RTRELAY_SERVER_PORT": "80x"})
    assert message == "RTRELAY_SERVER_PORT: expected int, got '80x'"


def test_an_out_of_range_environment_value_names_its_variable(tmp_path: Path) -> None:
    message = _error(tmp_path, BASE, {"RTRELAY_SERVER_PORT": "99999"})
    assert message == "server.port must be 0..65535 (from RTRELAY_SERVER_PORT)"


def test_models_as_a_string_says_a_list_or_a_table_is_accepted(tmp_path: Path) -> None:
    text = BASE.replace('models = ["gpt-realtime-mini"]', 'models = "gpt-realtime-mini"')
    assert _error(tmp_path, text) == (
        'rtrelay.toml:11: channels[1].models must be a list of names, e.g. ["gpt-realtime-mini"], '
        'or a table of public name = upstream name, e.g. { "gpt-realtime-mini" = '
        "\"my-deployment\" }; got a string 'gpt-realtime-mini'"
    )


def test_a_misspelt_field_gets_a_suggestion_and_its_line(tmp_path: Path) -> None:
    message = _error(tmp_path, BASE.replace("port = 8091", "prot = 8091"))
    assert message.startswith(
        "rtrelay.toml:3: server: unknown field 'prot' (did you mean 'port'?); the fields are host, "
    )


def test_a_misspelt_channel_field_points_at_its_channel(tmp_path: Path) -> None:
    message = _error(tmp_path, BASE + 'kidn = "azure"\n')
    assert message.startswith(
        "rtrelay.toml:12: channels[1]: unknown field 'kidn' (did you mean 'kind'?)"
    )


def test_a_misspelt_section_gets_a_suggestion(tmp_path: Path) -> None:
    message = _error(tmp_path, BASE.replace("[server]", "[sever]"))
    assert message.startswith(
        "rtrelay.toml:1: unknown config section [sever] (did you mean [server]?); "
        "the sections are [server], [auth],"
    )


def test_a_misspelt_choice_gets_a_suggestion(tmp_path: Path) -> None:
    message = _error(tmp_path, BASE + '[logging]\nformat = "jsno"\n')
    assert message == (
        "rtrelay.toml:13: logging.format must be one of 'json', 'text'; "
        "got 'jsno' (did you mean 'json'?)"
    )


def test_a_validation_error_points_at_the_field_it_names(tmp_path: Path) -> None:
    message = _error(tmp_path, BASE + "weight = 0\n")
    assert message == "rtrelay.toml:12: channel 'second': weight must be at least 1"


def test_a_missing_required_field_points_at_its_table(tmp_path: Path) -> None:
    message = _error(tmp_path, BASE.replace('name = "second"\n', ""))
    assert message == "rtrelay.toml:9: channels[1]: the field 'name' is required"


def test_booleans_are_true_or_false(tmp_path: Path) -> None:
    message = _error(tmp_path, '[store]\nledger = "false"\n')
    assert message == (
        "rtrelay.toml:2: store.ledger must be true or false (a TOML boolean, without quotes); "
        "got a string 'false'"
    )
    misspelt = _error(tmp_path, "", {"RTRELAY_STORE_LEDGER": "flase"})
    assert misspelt == (
        "RTRELAY_STORE_LEDGER must be true or false (also 1/0, yes/no, on/off); got 'flase'"
    )


def test_off_turns_an_optional_setting_off_from_either_source(tmp_path: Path) -> None:
    path = tmp_path / "rtrelay.toml"
    path.write_text('[timeouts]\nidle = "off"\n')
    assert config.load(path, {}).timeouts.idle is None
    assert config.load(path, {"RTRELAY_TIMEOUTS_HEARTBEAT": "off"}).timeouts.heartbeat is None


def test_a_price_table_error_points_at_its_key(tmp_path: Path) -> None:
    message = _error(tmp_path, BASE + '\n[prices."my-model"]\ntext_in = -1\n')
    assert (
        message == "rtrelay.toml:14: prices.my-model.text_in must be a finite number >= 0, got -1"
    )
