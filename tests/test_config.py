"""Settings: TOML plus RTRELAY_* overrides, validated up front."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtrelay import config


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text(
        '[server]\nport = 9000\n[timeouts]\nidle = 30\n[[channels]]\nname = "a"\nmodels = ["m"]\n'
    )
    s = config.load(path, {"RTRELAY_SERVER_PORT": "9100", "RTRELAY_TIMEOUTS_IDLE": "off"})
    assert s.server.port == 9100
    assert s.timeouts.idle is None
    assert s.channels[0].models == {"m": "m"}


def test_model_mapping_and_breaker_section() -> None:
    s = config.from_mapping(
        {
            "breaker": {"failure_threshold": 5},
            "channels": [{"name": "az", "kind": "azure", "models": {"gpt-realtime": "my-rt"}}],
        }
    )
    assert s.breaker.failure_threshold == 5
    assert s.channels[0].upstream_model("gpt-realtime") == "my-rt"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"nope": {}}, "unknown config section"),
        ({"server": {"colour": "red"}}, "unknown field"),
        ({"server": {"handshake_errors": "loud"}}, "handshake_errors"),
        ({"server": {"port": "eighty"}}, "expected int"),
        ({"timeouts": {"dial": -1}}, "positive"),
        ({"channels": [{"name": "x", "models": []}]}, "at least one model"),
        ({"channels": [{"name": "x", "kind": "carrier-pigeon", "models": ["m"]}]}, "kind"),
        (
            {
                "channels": [
                    {
                        "name": "x",
                        "kind": "openai-compatible",
                        "models": ["m"],
                        "url_template": "wss://h/{deployment}",
                    }
                ]
            },
            "only use {model}",
        ),
        ({"channels": [{"name": "x", "models": ["m"]}, {"name": "x", "models": ["m"]}]}, "unique"),
        ({"breaker": {"base_cooldown": 10, "max_cooldown": 1}}, "cooldown"),
        ({"redis": {"lease_ttl": 0}}, "lease_ttl must be positive"),
    ],
)
def test_invalid_config_names_the_field(raw: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(config.ConfigError, match=message):
        config.from_mapping(raw)


def test_config_never_holds_a_provider_key() -> None:
    fields = {f for f in config.Channel.__dataclass_fields__}
    assert "api_key_env" in fields
    assert not {"api_key", "key", "secret"} & fields
