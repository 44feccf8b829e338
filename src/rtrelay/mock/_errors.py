"""The errors OpenAI's Realtime server reports, as the simulated provider renders them.

These are the *provider's* errors (protocol.md §3, §4), not rtrelay's error table: the
relay must see exactly what a real provider sends.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = [
    "ProviderError",
    "active_response",
    "beta_disabled",
    "call_not_found",
    "cancel_not_active",
    "commit_empty",
    "delegation_required",
    "immutable_parameter",
    "invalid_api_key",
    "invalid_event",
    "invalid_model",
    "invalid_offer",
    "invalid_type",
    "invalid_value",
    "live_model_on_realtime",
    "live_session_not_found",
    "missing_parameter",
    "session_already_started",
    "session_expired",
    "session_not_started",
    "unknown_parameter",
]


class ProviderError(Exception):
    """One ``error`` event's payload; raised inside the protocol, rendered by its dispatcher.

    Args:
        code: ``error.code`` (``None`` when OpenAI gives none).
        message: ``error.message``.
        type: ``error.type``.
        param: ``error.param``, the dotted path of the offending field.
    """

    def __init__(
        self,
        code: str | None,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.type = type
        self.param = param

    def payload(self, client_event_id: str | None = None) -> dict[str, Any]:
        """The ``error`` object; ``event_id`` names the client event that caused it."""
        return {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "event_id": client_event_id,
        }

    def http_body(self) -> str:
        """The JSON body of an HTTP error response (no ``event_id``: no event caused it)."""
        payload = self.payload()
        del payload["event_id"]
        return orjson.dumps({"error": payload}).decode()

    @property
    def close_reason(self) -> str:
        """``<type>.<code>``, the reason OpenAI puts in a close frame after a fatal error."""
        return f"{self.type}.{self.code}"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def invalid_api_key(masked_key: str | None) -> ProviderError:
    if masked_key is None:
        message = (
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
    else:
        message = (
            f"Incorrect API key provided: {masked_key}. You can find your API key at "
            "https://platform.openai.com/account/api-keys."
        )
    return ProviderError("invalid_api_key", message)


def beta_disabled() -> ProviderError:
    return ProviderError(
        "beta_api_shape_disabled",
        "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API.",
    )


def session_expired(max_seconds: float) -> ProviderError:
    minutes = max_seconds / 60
    amount = f"{minutes:g}" if minutes >= 1 else f"{minutes:.4g}"
    return ProviderError(
        "session_expired", f"Your session hit the maximum duration of {amount} minutes."
    )


def commit_empty(buffered_ms: float) -> ProviderError:
    return ProviderError(
        "input_audio_buffer_commit_empty",
        f"Error committing input audio buffer: buffer too small. Expected at least 100ms of "
        f"audio, but buffer only has {buffered_ms:.2f}ms of audio.",
    )


def active_response(response_id: str) -> ProviderError:
    return ProviderError(
        "conversation_already_has_active_response",
        f"Conversation already has an active response in progress: {response_id}. "
        "Wait until the response is finished before creating a new one.",
    )


def cancel_not_active() -> ProviderError:
    return ProviderError(
        "response_cancel_not_active", "Cancellation failed: no active response found."
    )


def invalid_event(message: str, *, param: str | None = None) -> ProviderError:
    return ProviderError("invalid_event", message, param=param)


def unknown_parameter(param: str) -> ProviderError:
    return ProviderError("unknown_parameter", f"Unknown parameter: '{param}'.", param=param)


def missing_parameter(param: str) -> ProviderError:
    return ProviderError(
        "missing_required_parameter", f"Missing required parameter: '{param}'.", param=param
    )


def invalid_type(param: str, expected: str, value: Any) -> ProviderError:
    return ProviderError(
        "invalid_type",
        f"Invalid type for '{param}': expected {expected}, but got {_kind(value)} instead.",
        param=param,
    )


def invalid_value(param: str, message: str) -> ProviderError:
    return ProviderError("invalid_value", message, param=param)


def call_not_found(call_id: str) -> ProviderError:
    return ProviderError(
        "call_not_found", f"No active call found with id '{call_id}'.", param="call_id"
    )


def invalid_offer(message: str) -> ProviderError:
    return ProviderError("invalid_offer", message, param="sdp")


def invalid_model(model: str, message: str) -> ProviderError:
    """A model the endpoint does not serve: a Live model on ``/v1/realtime``, a Realtime
    model in ``session.start`` (protocol.md §10: OpenAI answers ``invalid_model``)."""
    return ProviderError("invalid_model", message, param="model")


def live_model_on_realtime(model: str) -> ProviderError:
    """A GPT-Live model asked of the Realtime API (a WebSocket or a WebRTC call)."""
    return invalid_model(
        model,
        f"The model '{model}' is a GPT-Live model and is not supported on /v1/realtime. "
        "Connect to /v1/live/sessions instead.",
    )


def immutable_parameter(param: str) -> ProviderError:
    """A field fixed when the session started (Live: model, instructions, audio, input;
    translation: model and type)."""
    return ProviderError(
        "unknown_parameter",
        f"Unknown parameter: '{param}'. It is set when the session starts and cannot be "
        "changed with session.update.",
        param=param,
    )


def session_not_started() -> ProviderError:
    return ProviderError(
        "session_not_started",
        "Send session.start first and wait for session.started before other events.",
        param="type",
    )


def session_already_started() -> ProviderError:
    return ProviderError(
        "session_already_started", "The session has already started.", param="type"
    )


def delegation_required(event: str, delegation: str) -> ProviderError:
    """A Live command that needs the session to delegate to ``delegation``."""
    return ProviderError(
        "delegation_required",
        f"{event} requires {delegation} delegation: start the session with "
        f"delegation.type '{delegation}'.",
        param="type",
    )


def live_session_not_found(session_id: str) -> ProviderError:
    return ProviderError(
        "session_not_found",
        f"No active Live session found with id '{session_id}'.",
        param="session_id",
    )
