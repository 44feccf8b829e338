"""``response.create``'s ``response`` object: per-response overrides of the session.

Fields that mirror session fields (modalities, voice, format, token limit) are validated
by the session parser so both report the same errors, renamed to ``response.*``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from rtrelay.mock import _errors as errors
from rtrelay.mock._audio import AudioFormat
from rtrelay.mock._errors import ProviderError
from rtrelay.mock._ids import IdFactory
from rtrelay.mock._items import Conversation, Item, parse_item
from rtrelay.mock._options import Dialect
from rtrelay.mock._session_config import SessionConfig, apply_update

__all__ = ["ResponseParams", "parse_response_params"]

_SESSION_MIRRORS_GA: Final = frozenset({"output_modalities", "audio", "max_output_tokens"})
_SESSION_MIRRORS_BETA: Final = frozenset(
    {"modalities", "voice", "output_audio_format", "max_response_output_tokens", "temperature"}
)
_OWN_FIELDS: Final = frozenset(
    {"conversation", "input", "instructions", "metadata", "tools", "tool_choice", "prompt"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseParams:
    """What one response uses: the session's settings with the overrides applied."""

    instructions: str
    in_conversation: bool
    input: list[Item] | None
    modality: Literal["audio", "text"]
    format: AudioFormat
    voice: Any
    max_output_tokens: int | Literal["inf"]
    temperature: float
    metadata: Any


def parse_response_params(
    raw: Any,
    config: SessionConfig,
    dialect: Dialect,
    conversation: Conversation,
    ids: IdFactory,
) -> ResponseParams:
    """Resolve a ``response.create``'s ``response`` object against the session.

    Raises:
        ProviderError: an unknown field or an invalid value.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise errors.invalid_type("response", "an object", raw)
    mirrors = _SESSION_MIRRORS_GA if dialect == "ga" else _SESSION_MIRRORS_BETA
    overrides: dict[str, Any] = {}
    for key, value in raw.items():
        param = f"response.{key}"
        if key in mirrors:
            overrides[key] = value
        elif key not in _OWN_FIELDS:
            raise errors.unknown_parameter(param)
        elif key == "instructions" and not isinstance(value, str):
            raise errors.invalid_type(param, "a string", value)
        elif key == "conversation" and value not in ("auto", "none"):
            raise errors.invalid_value(
                param, f"Invalid value: '{value}'. Supported values are: 'auto', 'none'."
            )
    effective = _with_overrides(config, overrides, dialect)
    items = None
    if "input" in raw:
        items = _resolve_input(raw["input"], dialect, conversation, ids, config)
    return ResponseParams(
        instructions=raw.get("instructions", config.instructions),
        in_conversation=raw.get("conversation", "auto") == "auto",
        input=items,
        modality="audio" if effective.speaks_audio else "text",
        format=effective.output_format,
        voice=effective.voice,
        max_output_tokens=effective.max_output_tokens,
        temperature=effective.temperature,
        metadata=raw.get("metadata"),
    )


def _with_overrides(
    config: SessionConfig, overrides: dict[str, Any], dialect: Dialect
) -> SessionConfig:
    if not overrides:
        return config
    session = {"type": "realtime", **overrides} if dialect == "ga" else overrides
    try:
        return apply_update(config, session, dialect, audio_produced=False)
    except ProviderError as error:
        if error.param is not None:
            error.message = error.message.replace("session.", "response.")
            error.param = "response." + error.param.removeprefix("session.")
        raise


def _resolve_input(
    raw: Any, dialect: Dialect, conversation: Conversation, ids: IdFactory, config: SessionConfig
) -> list[Item]:
    if not isinstance(raw, list):
        raise errors.invalid_type("response.input", "an array", raw)
    items: list[Item] = []
    for index, entry in enumerate(raw):
        if isinstance(entry, dict) and entry.get("type") == "item_reference":
            item = conversation.get(str(entry.get("id")))
            if item is None:
                raise errors.invalid_value(
                    f"response.input[{index}].id",
                    f"Item with item_id '{entry.get('id')}' not found in the conversation.",
                )
            items.append(item)
        else:
            items.append(parse_item(entry, dialect, ids, config.input_format))
    return items
