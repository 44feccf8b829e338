"""Failures of the store, under one root::

StoreError
├── StoreUnavailable ....... cannot connect, or the schema is newer than this code
├── KeyNotFound ............ no key with that id or prefix (also a LookupError)
├── KeyRevoked ............. a revoked key cannot be rotated
├── SessionExists .......... a session opened twice (a journal replayed after it was written)
└── UnknownSession ......... usage for a session that was never opened (also a LookupError)
"""

from __future__ import annotations

__all__ = [
    "KeyNotFound",
    "KeyRevoked",
    "SessionExists",
    "StoreError",
    "StoreUnavailable",
    "UnknownSession",
]


class StoreError(Exception):
    """Root of every failure ``rtrelay.ledger`` raises on purpose."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or migrated; the message says which URL (no password)."""


class KeyNotFound(StoreError, LookupError):
    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(f"no key {ref!r}")


class KeyRevoked(StoreError):
    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(f"key {key_id!r} is revoked; create a new key instead")


class SessionExists(StoreError):
    """Some of the sessions being opened already are (ids in ``session_ids``).

    The writer's replay tells a start an earlier replay already wrote from a bad one by it.
    """

    def __init__(self, session_ids: list[str]) -> None:
        self.session_ids = session_ids
        super().__init__(f"sessions already opened: {', '.join(map(repr, session_ids))}")


class UnknownSession(StoreError, LookupError):
    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(f"no session {session_id!r}: open_sessions() must come first")
