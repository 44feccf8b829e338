"""A GPT-Live session's delegates: the Responses and Decisions backends it hands work to.

What they answer is billable token usage, whether a client event asked for it
(``response.create``, ``decision.create``) or the model delegated a turn or a trigger
fired: Responses answers are ``response.event`` events wrapping a Responses API stream
whose ``response.completed`` carries usage (``openai/types/live/response_event.py``);
Decisions answers are ``decision.event`` events carrying a ``Decision`` (``_decisions``).
Input items (``response.item.create``, ``decision.item.create``) add to what the next
request reads. Token counts are simple and exact (``text_tokens`` of the backend's
instructions, the transcript heard and the items), so a meter's figures can be checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from rtrelay.mock import _errors as errors
from rtrelay.mock._decisions import decision
from rtrelay.mock._ids import IdFactory
from rtrelay.mock._response import Event, reply_words
from rtrelay.mock._usage import text_tokens

__all__ = ["Delegates", "parse_item"]

# Tokens a delegated request costs beyond its instructions, the transcript and the items.
_FRAMING_TOKENS: Final = 10
_DEFAULT_RESPONSES_MODEL: Final = "gpt-5.5"
_TOOL_ITEMS: Final = (
    "function_call",
    "function_call_output",
    "custom_tool_call",
    "custom_tool_call_output",
)

# (type, client_event_id, **fields) -> a server event with its event_id
EventFactory = Callable[..., Event]


class Delegates:
    """The backends of one Live session.

    Args:
        ids: where identifiers come from.
        event: the session's event factory, ``event(kind, client_event_id, **fields)``.
        now: Unix time of the session, for ``created_at``.
        heard: the session's transcript so far, as words (read, never written).
    """

    __slots__ = ("_event", "_heard", "_ids", "_now", "decision_items", "response_items")

    def __init__(self, ids: IdFactory, event: EventFactory, now: int, heard: list[str]) -> None:
        self._ids = ids
        self._event = event
        self._now = now
        self._heard = heard
        self.response_items: list[dict[str, Any]] = []
        self.decision_items: dict[str, dict[str, Any]] = {}

    def responses(
        self,
        delegation: dict[str, Any],
        response_id: str,
        client_id: str | None,
        delegation_id: str | None,
    ) -> list[Event]:
        """A Responses answer of the backend ``delegation["responses"]``."""
        backend = delegation.get("responses") or {}
        instructions = backend.get("instructions")
        text = " ".join(reply_words(None))
        context = " ".join([*self._heard, *map(_item_text, self.response_items)])
        input_tokens = _FRAMING_TOKENS + text_tokens(context)
        if isinstance(instructions, str):
            input_tokens += text_tokens(instructions)
        output_tokens = text_tokens(text)
        snapshot = {
            "id": response_id,
            "object": "response",
            "created_at": self._now,
            "model": backend.get("model", _DEFAULT_RESPONSES_MODEL),
            "status": "in_progress",
            "output": [],
            "usage": None,
        }
        usage = {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        }
        nested: list[dict[str, Any]] = [
            {"type": "response.created", "response": snapshot},
            {"type": "response.output_text.delta", "output_index": 0, "delta": text},
            {"type": "response.output_text.done", "output_index": 0, "text": text},
            {
                "type": "response.completed",
                "response": {**snapshot, "status": "completed", "usage": usage},
            },
        ]
        return [
            self._event(
                "response.event",
                client_id,
                delegation_id=delegation_id,
                event={**inner, "sequence_number": number},
            )
            for number, inner in enumerate(nested)
        ]

    def decision(
        self, config: dict[str, Any], source: Event | None, delegation_id: str | None
    ) -> Event:
        """A ``decision.event`` answering ``config``'s questions, for a request or a
        delegation (``source`` ``None``) or a trigger fired by the transcript delta
        ``source``."""
        items = map(_item_text, self.decision_items.values())
        answer = decision(config, " ".join([*self._heard, *items]))
        return self._event(
            "decision.event",
            None,
            delegation_id=delegation_id,
            source_event_id=None if source is None else source["event_id"],
            source_event_type=None if source is None else source["type"],
            trigger_id=None if source is None else self._ids.new("trig"),
            event={"type": "decision.completed", "decision": answer},
        )


def parse_item(event: Event) -> dict[str, Any]:
    """The ``item`` of a ``*.item.create`` event: a message (a ``role``) or a tool call or
    its output (a ``type``), kept as given otherwise."""
    item = event.get("item")
    if item is None:
        raise errors.missing_parameter("item")
    if not isinstance(item, dict):
        raise errors.invalid_type("item", "an object", item)
    if "role" in item:
        if item["role"] not in ("user", "developer", "system", "assistant"):
            raise errors.invalid_value("item.role", f"Invalid value: {item['role']!r}.")
    elif item.get("type") not in _TOOL_ITEMS:
        raise errors.invalid_value(
            "item.type", f"Invalid value: {item.get('type')!r}. Send a message or a tool item."
        )
    return item


def _item_text(item: dict[str, Any]) -> str:
    """The text an item adds to a delegate's input (what its tokens are counted from)."""
    for key in ("content", "output", "arguments", "input"):
        value = item.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            return " ".join(
                str(part["text"]) for part in value if isinstance(part, dict) and "text" in part
            )
    return ""
