"""Identifiers in OpenAI's style (``event_…``, ``sess_…``, ``resp_…``, ``item_…``, ``conv_…``)."""

from __future__ import annotations

import random
import string
from typing import Final

__all__ = ["IdFactory"]

_ALPHABET: Final = string.ascii_letters + string.digits
_LENGTH: Final = 21


class IdFactory:
    """Makes identifiers from an injected random source, so protocol tests can be reproducible.

    Args:
        rng: the source of randomness; a fresh OS-seeded ``random.Random`` by default.
    """

    __slots__ = ("_rng",)

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng if rng is not None else random.Random()

    def new(self, prefix: str) -> str:
        return prefix + "_" + "".join(self._rng.choices(_ALPHABET, k=_LENGTH))

    def event(self) -> str:
        return self.new("event")

    def session(self) -> str:
        return self.new("sess")

    def conversation(self) -> str:
        return self.new("conv")

    def response(self) -> str:
        return self.new("resp")

    def item(self) -> str:
        return self.new("item")
