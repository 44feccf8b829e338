"""The admin API's OpenAPI 3.1 document, written by hand next to the routes it describes.

``openapi_document()`` returns a fresh dict; the app serves its copy from
``app[OPENAPI]``, so routes added later can describe themselves there. A test
checks that every route of the app is in ``paths`` and the reverse.
"""

from __future__ import annotations

from typing import Any

from rtrelay import __version__
from rtrelay.ledger.keys import MAX_BUDGET_USD, MAX_COUNT, MAX_NAMES, MAX_TEXT
from rtrelay.ledger.schema import TOKEN_COLUMNS

__all__ = ["openapi_document"]

_NULLABLE_STR: dict[str, Any] = {"type": ["string", "null"]}
_NULLABLE_INT: dict[str, Any] = {"type": ["integer", "null"]}
_NULLABLE_TIME: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
_NAMES: dict[str, Any] = {"type": ["array", "null"], "items": {"type": "string"}}
_COUNT: dict[str, Any] = {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_COUNT}
_CREATE_NAMES: dict[str, Any] = {
    "type": ["array", "null"],
    "maxItems": MAX_NAMES,
    "items": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT},
}
_MONEY: dict[str, Any] = {
    "type": "string",
    "pattern": r"^-?\d+(\.\d+)?$",
    "description": "USD as an exact decimal string.",
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _list_of(name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["object", "data"],
        "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": _ref(name)}},
    }


_ERROR_TEXT: dict[int, str] = {
    400: "Invalid request",
    401: "Missing or wrong admin token",
    403: "The admin API is off (no admin token configured)",
    404: "No such key",
    409: "The key is revoked",
}


def _errors(*statuses: int) -> dict[str, Any]:
    out = {str(s): _json(_ref("Error"), _ERROR_TEXT[s]) for s in (401, 403, *statuses)}
    out["default"] = _json(_ref("Error"), "Unexpected error")
    return out


_KEY_PARAM: dict[str, Any] = {
    "name": "key",
    "in": "path",
    "required": True,
    "description": "The key's id (key_...) or its 8-character prefix.",
    "schema": {"type": "string"},
}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


_WHEN = "A duration back from now (7d, 12h), a date (2026-01-01) or an ISO 8601 time."


def openapi_document() -> dict[str, Any]:
    key_properties: dict[str, Any] = {
        "object": {"const": "rtrelay.key"},
        "id": {"type": "string"},
        "prefix": {"type": "string", "description": "The secret starts with rk_<prefix>_."},
        "name": {"type": "string"},
        "status": {"enum": ["active", "revoked", "expired"]},
        "models": _NAMES,
        "max_sessions": _NULLABLE_INT,
        "sessions_per_minute": _NULLABLE_INT,
        "budget_usd": {"oneOf": [_MONEY, {"type": "null"}]},
        "origins": _NAMES,
        "created_at": {"type": "string", "format": "date-time"},
        "revoked_at": _NULLABLE_TIME,
        "expires_at": _NULLABLE_TIME,
        "spent_usd": _MONEY,
    }
    key_required = ["object", "id", "prefix", "name", "status", "created_at"]
    usage_properties: dict[str, Any] = {
        "group": _NULLABLE_STR,
        "name": _NULLABLE_STR,
        **{
            f: {"type": "integer"}
            for f in (
                *TOKEN_COLUMNS,
                "responses",
                "transcriptions",
                "durations",
                "unpriced",
                "sessions",
            )
        },
        "seconds": {
            "type": "string",
            "description": "Seconds of audio billed by duration (GPT-Live, translation, "
            "ASR priced per minute); a decimal string.",
        },
        "transcription_seconds": {
            "type": "string",
            "deprecated": True,
            "description": "The same as seconds (its name before GPT-Live).",
        },
        "cost_usd": _MONEY,
    }
    session_properties: dict[str, Any] = {
        "object": {"const": "rtrelay.session"},
        "id": {"type": "string"},
        "key_id": _NULLABLE_STR,
        "key_prefix": _NULLABLE_STR,
        "model": {"type": "string"},
        "channel": {"type": "string"},
        "status": {"enum": ["live", "completed", "failed", "interrupted"]},
        "started_at": {"type": "string", "format": "date-time"},
        "ended_at": _NULLABLE_TIME,
        "duration_s": {"type": ["number", "null"]},
        "client_kind": _NULLABLE_STR,
        "shape": {"type": "string"},
        "origin": _NULLABLE_STR,
        "request_id": _NULLABLE_STR,
        "node": _NULLABLE_STR,
        **{
            f: _NULLABLE_INT
            for f in (
                "frames_from_client",
                "bytes_from_client",
                "frames_from_upstream",
                "bytes_from_upstream",
                "client_close_code",
                "upstream_close_code",
            )
        },
        "error_code": _NULLABLE_STR,
        "channels_tried": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "channel": {"type": "string"},
                    "outcome": {"type": "string"},
                    "detail": _NULLABLE_STR,
                },
            },
        },
        "responses": {"type": "integer"},
        "cost_usd": _MONEY,
        "unpriced": {"type": "integer"},
        "seconds": {"type": "string", "description": "Seconds of audio billed by duration."},
        "live": {"type": "object", "description": "This relay's live counters, if it holds it."},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "rtrelay admin API",
            "version": __version__,
            "description": "Keys, usage and sessions of an rtrelay gateway. Every route needs "
            "'Authorization: Bearer <admin token>'. Errors are OpenAI-style JSON.",
        },
        "servers": [{"url": "/admin/v1"}],
        "security": [{"adminToken": []}],
        "paths": {
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document",
                    "responses": {
                        "200": _json({"type": "object"}, "The OpenAPI document"),
                        **_errors(),
                    },
                }
            },
            "/keys": {
                "get": {
                    "operationId": "listKeys",
                    "summary": "All keys (never their secrets)",
                    "responses": {"200": _json(_list_of("Key"), "The keys"), **_errors()},
                },
                "post": {
                    "operationId": "createKey",
                    "summary": "Create a key; the response is the only place its secret appears",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("KeyCreate")}},
                    },
                    "responses": {
                        "201": _json(_ref("KeyWithSecret"), "The new key and its secret"),
                        **_errors(400),
                    },
                },
            },
            "/keys/{key}": {
                "parameters": [_KEY_PARAM],
                "get": {
                    "operationId": "getKey",
                    "summary": "One key",
                    "responses": {"200": _json(_ref("Key"), "The key"), **_errors(404)},
                },
            },
            "/keys/{key}/revoke": {
                "parameters": [_KEY_PARAM],
                "post": {
                    "operationId": "revokeKey",
                    "summary": "Revoke a key at once (idempotent)",
                    "responses": {"200": _json(_ref("Key"), "The revoked key"), **_errors(404)},
                },
            },
            "/keys/{key}/rotate": {
                "parameters": [_KEY_PARAM],
                "post": {
                    "operationId": "rotateKey",
                    "summary": "New secret; same key, limits and spend; old secret stops working",
                    "responses": {
                        "200": _json(_ref("KeyWithSecret"), "The key and its new secret"),
                        **_errors(404, 409),
                    },
                },
            },
            "/usage": {
                "get": {
                    "operationId": "getUsage",
                    "summary": "Tokens and cost per key, model or UTC day",
                    "parameters": [
                        _query("key", "Only this key (id or prefix)."),
                        _query("since", f"Inclusive. {_WHEN}"),
                        _query("until", f"Exclusive. {_WHEN}"),
                        _query("by", "Grouping.", {"enum": ["key", "model", "day"]}),
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["object", "by", "data"],
                                "properties": {
                                    "object": {"const": "list"},
                                    "by": {"enum": ["key", "model", "day"]},
                                    "data": {"type": "array", "items": _ref("UsageRow")},
                                },
                            },
                            "Usage rows",
                        ),
                        **_errors(400, 404),
                    },
                }
            },
            "/sessions": {
                "get": {
                    "operationId": "listSessions",
                    "summary": "Live and past sessions, newest first",
                    "parameters": [
                        _query("key", "Only this key (id or prefix)."),
                        _query("since", f"Started at or after. {_WHEN}"),
                        _query("live", "Only live sessions.", {"type": "boolean"}),
                        _query(
                            "limit",
                            "At most this many (default 100).",
                            {"type": "integer", "minimum": 1, "maximum": 1000},
                        ),
                    ],
                    "responses": {
                        "200": _json(_list_of("Session"), "Sessions"),
                        **_errors(400, 404),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["type", "code", "message"],
                            "properties": {
                                "type": {"type": "string"},
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                                "param": _NULLABLE_STR,
                            },
                        }
                    },
                },
                "Key": {"type": "object", "required": key_required, "properties": key_properties},
                "KeyWithSecret": {
                    "allOf": [
                        _ref("Key"),
                        {
                            "type": "object",
                            "required": ["secret"],
                            "properties": {
                                "secret": {"type": "string", "pattern": "^rk_[a-z0-9]{8}_"}
                            },
                        },
                    ]
                },
                "KeyCreate": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT},
                        "models": _CREATE_NAMES,
                        "max_sessions": _COUNT,
                        "sessions_per_minute": _COUNT,
                        "budget_usd": {
                            "type": ["string", "number", "null"],
                            "description": f"USD, 0 to {MAX_BUDGET_USD}.",
                        },
                        "expires_at": _NULLABLE_TIME,
                        "expires_in": {
                            "type": ["string", "null"],
                            "description": "Instead of expires_at: 30d, 12h...",
                        },
                        "origins": _CREATE_NAMES,
                    },
                },
                "UsageRow": {"type": "object", "properties": usage_properties},
                "Session": {
                    "type": "object",
                    "required": ["object", "id", "status", "started_at"],
                    "properties": session_properties,
                },
            },
        },
    }
