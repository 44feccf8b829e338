"""Conversation items: what the client creates, what responses add, and their token cost.

Items keep only durations of audio, never the bytes: no server frame may reach 1 MiB
(protocol.md §3), and nothing ever needs the audio back, so echoes omit it.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from typing import Any, Final

from rtrelay.mock import _errors as errors
from rtrelay.mock._audio import AudioFormat, bytes_per_ms
from rtrelay.mock._ids import IdFactory
from rtrelay.mock._options import Dialect
from rtrelay.mock._usage import Tokens, assistant_audio_tokens, text_tokens, user_audio_tokens

__all__ = ["Conversation", "Item", "parse_item"]

_BETA_PART: Final = {"output_text": "text", "output_audio": "audio"}
_GA_PART: Final = {v: k for k, v in _BETA_PART.items()}
_ROLE_PARTS: Final[dict[str, tuple[str, ...]]] = {
    "user": ("input_text", "input_audio", "input_image"),
    "system": ("input_text",),
    "assistant": ("output_text", "output_audio"),
}


@dataclass(slots=True, kw_only=True)
class Item:
    """One conversation item; ``content`` parts use GA type names internally."""

    id: str
    type: str = "message"
    role: str | None = None
    status: str = "completed"
    content: list[dict[str, Any]] = field(default_factory=list)
    audio_ms: float = 0.0
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None

    def tokens(self) -> Tokens:
        """What this item costs as input to a later response."""
        if self.type == "function_call":
            return Tokens(text=text_tokens((self.name or "") + (self.arguments or "")))
        if self.type == "function_call_output":
            return Tokens(text=text_tokens(self.output or ""))
        text = 0
        audio = 0
        for part in self.content:
            kind = part["type"]
            if kind in ("input_text", "output_text"):
                text += text_tokens(part.get("text") or "")
            elif kind == "input_audio":
                if self.audio_ms:
                    audio += user_audio_tokens(self.audio_ms)
                else:
                    text += text_tokens(part.get("transcript") or "")
            elif kind == "output_audio":
                audio += assistant_audio_tokens(self.audio_ms)
        return Tokens(text=text, audio=audio)

    def render(self, dialect: Dialect) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "object": "realtime.item",
            "status": self.status,
        }
        if self.type == "message":
            out["role"] = self.role
            parts = [dict(p) for p in self.content]
            if dialect == "beta":
                for part in parts:
                    part["type"] = _BETA_PART.get(part["type"], part["type"])
            out["content"] = parts
        elif self.type == "function_call":
            out.update(call_id=self.call_id, name=self.name, arguments=self.arguments)
        else:
            out.update(call_id=self.call_id, output=self.output)
        return out


class Conversation:
    """Items in order, with OpenAI's ``previous_item_id`` insertion rules."""

    __slots__ = ("id", "items")

    def __init__(self, conversation_id: str) -> None:
        self.id = conversation_id
        self.items: list[Item] = []

    def get(self, item_id: str) -> Item | None:
        return next((item for item in self.items if item.id == item_id), None)

    def previous_id(self, item_id: str) -> str | None:
        for index, item in enumerate(self.items):
            if item.id == item_id:
                return self.items[index - 1].id if index else None
        return None

    def insert(self, item: Item, previous_item_id: str | None = None) -> str | None:
        """Add ``item`` after ``previous_item_id`` (``"root"``: first; ``None``: last).

        Returns:
            The id of the item now before it, as ``conversation.item.added`` reports.
        """
        if self.get(item.id) is not None:
            raise errors.invalid_value(
                "item.id", f"Item with item_id '{item.id}' already exists in the conversation."
            )
        if previous_item_id is None:
            self.items.append(item)
        elif previous_item_id == "root":
            self.items.insert(0, item)
        else:
            previous = self.get(previous_item_id)
            if previous is None:
                raise errors.invalid_value(
                    "previous_item_id",
                    f"Previous item with item_id '{previous_item_id}' not found.",
                )
            self.items.insert(self.items.index(previous) + 1, item)
        return self.previous_id(item.id)

    def delete(self, item_id: str) -> None:
        item = self.get(item_id)
        if item is None:
            raise not_found(item_id)
        self.items.remove(item)


def not_found(item_id: str) -> errors.ProviderError:
    return errors.invalid_value(
        "item_id", f"Item with item_id '{item_id}' not found in the conversation."
    )


def parse_item(raw: Any, dialect: Dialect, ids: IdFactory, input_format: AudioFormat) -> Item:
    """An ``Item`` from a client's ``conversation.item.create``.

    Raises:
        ProviderError: the item is malformed.
    """
    if not isinstance(raw, dict):
        raise errors.invalid_type("item", "an object", raw)
    item_id = raw.get("id") or ids.item()
    if not isinstance(item_id, str):
        raise errors.invalid_type("item.id", "a string", item_id)
    kind = raw.get("type", "message")
    if kind == "message":
        return _parse_message(raw, item_id, dialect, input_format)
    if kind == "function_call":
        return Item(
            id=item_id,
            type=kind,
            call_id=_text(raw, "call_id", "item"),
            name=_text(raw, "name", "item"),
            arguments=_text(raw, "arguments", "item"),
        )
    if kind == "function_call_output":
        return Item(
            id=item_id,
            type=kind,
            call_id=_text(raw, "call_id", "item"),
            output=_text(raw, "output", "item"),
        )
    raise errors.invalid_value(
        "item.type",
        f"Invalid value: '{kind}'. Supported values are: 'message', 'function_call', "
        "and 'function_call_output'.",
    )


def _parse_message(
    raw: dict[str, Any], item_id: str, dialect: Dialect, input_format: AudioFormat
) -> Item:
    role = raw.get("role")
    if role not in _ROLE_PARTS:
        raise errors.invalid_value(
            "item.role",
            f"Invalid value: '{role}'. Supported values are: 'user', 'assistant', and 'system'.",
        )
    content = raw.get("content")
    if not isinstance(content, list):
        raise errors.invalid_type("item.content", "an array", content)
    parts: list[dict[str, Any]] = []
    audio_ms = 0.0
    allowed = _ROLE_PARTS[role]
    for index, part in enumerate(content):
        param = f"item.content[{index}]"
        if not isinstance(part, dict):
            raise errors.invalid_type(param, "an object", part)
        kind = part.get("type")
        if dialect == "beta" and role == "assistant" and isinstance(kind, str):
            kind = _GA_PART.get(kind, kind)
        elif role == "assistant" and kind in _GA_PART:
            kind = None  # GA spells these output_text / output_audio
        if kind not in allowed:
            shown = [(_BETA_PART.get(k, k) if dialect == "beta" else k) for k in allowed]
            raise errors.invalid_value(
                f"{param}.type",
                f"Invalid value: '{part.get('type')}'. Supported values are: "
                + ", ".join(f"'{k}'" for k in shown)
                + ".",
            )
        if kind in ("input_text", "output_text"):
            parts.append({"type": kind, "text": _text(part, "text", param)})
        elif kind == "input_audio":
            audio = part.get("audio")
            if audio is not None:
                audio_ms += len(decode_base64(audio, f"{param}.audio")) / bytes_per_ms(input_format)
            parts.append({"type": kind, "transcript": part.get("transcript")})
        elif kind == "output_audio":
            parts.append({"type": kind, "transcript": part.get("transcript")})
        else:
            parts.append({"type": kind, "image_url": part.get("image_url")})
    return Item(id=item_id, role=role, content=parts, audio_ms=audio_ms)


def decode_base64(value: Any, param: str) -> bytes:
    """Base64 audio from a client event."""
    if not isinstance(value, str):
        raise errors.invalid_type(param, "a string", value)
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except binascii.Error:
        raise errors.invalid_value(
            param, f"Invalid '{param}': expected base64-encoded audio bytes."
        ) from None


def _text(obj: dict[str, Any], key: str, prefix: str) -> str:
    value = obj.get(key)
    if value is None:
        raise errors.missing_parameter(f"{prefix}.{key}")
    if not isinstance(value, str):
        raise errors.invalid_type(f"{prefix}.{key}", "a string", value)
    return value
