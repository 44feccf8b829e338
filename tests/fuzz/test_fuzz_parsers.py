"""Property tests for everything that reads client- or operator-supplied text.

The same properties run for millions of inputs under atheris (``fuzz/``, see
docs/reliability.md); here hypothesis runs them in CI.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from rtrelay import config
from rtrelay.edge.handshake import parse_hello
from rtrelay.wire import KEY_SUBPROTOCOL_PREFIX

_TOKENS = st.sampled_from(
    [
        "realtime",
        "openai-beta.realtime-v1",
        "openai-insecure-api-key.rk_abc_123",
        "openai-insecure-api-key.null",
        "openai-insecure-api-key.",
        "openai-organization.org",
        "openai-agents-sdk.1.0",
        "",
        " ",
    ]
)
_HEADER_NAMES = st.sampled_from(
    ["Authorization", "api-key", "Sec-WebSocket-Protocol", "Origin", "OpenAI-Beta", "X-Other"]
)


@st.composite
def _headers(draw: st.DrawFn) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    for name in draw(st.lists(_HEADER_NAMES, max_size=6)):
        if name == "Sec-WebSocket-Protocol":
            parts = draw(st.lists(st.one_of(_TOKENS, st.text(max_size=20)), max_size=5))
            value = draw(st.sampled_from([",", ", ", " ,"])).join(parts)
        elif name == "Authorization":
            value = draw(st.sampled_from(["Bearer ", "bearer ", "Basic ", ""])) + draw(
                st.text(max_size=30)
            )
        else:
            value = draw(st.text(max_size=30))
        headers.add(name, value)
    return headers


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_headers(), st.dictionaries(st.sampled_from(["model", "deployment", "x"]), st.text()))
def test_parse_hello_never_fails_and_never_echoes_a_secret(
    headers: CIMultiDict[str], query: dict[str, str]
) -> None:
    hello = parse_hello(headers, query, request_id="req_1")
    assert hello.echo_protocol in (None, "realtime")
    if hello.credential is not None:
        assert hello.credential == hello.credential.strip()
        assert hello.credential not in ("", "null", "undefined")
    for offered in hello.offered_protocols:
        assert offered == offered.strip() and offered and "," not in offered


def test_a_key_after_the_subprotocol_prefix_is_read_without_spaces() -> None:
    headers = CIMultiDict({"Sec-WebSocket-Protocol": f"realtime, {KEY_SUBPROTOCOL_PREFIX} rk_1 "})
    assert parse_hello(headers, {}, request_id="req_1").credential == "rk_1"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40))
def test_a_key_offered_as_a_subprotocol_is_read_exactly(key: str) -> None:
    key = key.replace(",", "").strip()
    if not key or key in ("null", "undefined"):
        return
    headers = CIMultiDict({"Sec-WebSocket-Protocol": f"realtime, {KEY_SUBPROTOCOL_PREFIX}{key}"})
    hello = parse_hello(headers, {}, request_id="req_1")
    assert hello.credential == key.strip()
    assert hello.echo_protocol == "realtime"


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["off", "0", "-1", "1e999", "nan", "http", "keys", "close", "redis://x"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_SECTIONS = {
    "server": ["host", "port", "workers", "handshake_errors", "allowed_origins"],
    "auth": ["mode"],
    "timeouts": ["dial", "handshake_deadline", "idle", "max_session", "request", "drain"],
    "limits": ["max_frame_bytes", "on_budget_spent", "max_pending_connections"],
    "store": ["url", "ledger", "retention_days", "journal"],
    "redis": ["url", "on_error"],
    "logging": ["level", "format"],
    "breaker": ["failure_threshold", "base_cooldown", "max_cooldown"],
}


@st.composite
def _raw_config(draw: st.DrawFn) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for section in draw(st.lists(st.sampled_from(sorted(_SECTIONS)), max_size=4, unique=True)):
        fields = st.sampled_from([*_SECTIONS[section], "unknown"])
        raw[section] = draw(st.dictionaries(fields, _VALUES, max_size=3))
    if draw(st.booleans()):
        raw["channels"] = draw(
            st.one_of(
                _VALUES,
                st.lists(
                    st.dictionaries(
                        st.sampled_from(
                            ["name", "kind", "base_url", "api_key_env", "models", "shapes"]
                        ),
                        _VALUES,
                    ),
                    max_size=2,
                ),
            )
        )
    if draw(st.booleans()):
        raw["prices"] = draw(_VALUES)
    return raw


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _raw_config(),
    st.dictionaries(
        st.sampled_from(
            [
                "RTRELAY_SERVER_PORT",
                "RTRELAY_TIMEOUTS_IDLE",
                "RTRELAY_LIMITS_MAX_FRAME_BYTES",
                "RTRELAY_STORE_URL",
            ]
        ),
        st.text(max_size=10),
    ),
)
def test_any_config_loads_or_fails_with_a_config_error(
    raw: dict[str, Any], environ: dict[str, str]
) -> None:
    try:
        config.from_mapping(raw, environ)
    except config.ConfigError as exc:
        if not str(exc):
            raise AssertionError("a ConfigError must name what is wrong") from exc
