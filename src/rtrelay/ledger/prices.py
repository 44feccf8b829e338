"""Token prices, usage parsed from the provider's events, and the cost arithmetic.

Prices are USD per 1M tokens (``per_minute``/``per_second`` are USD per minute/second
of audio, for models billed by duration), as published (protocol.md §8, and the model
pages cited at each row). Every figure is a
``Decimal``: a ledger an operator bills from must add up to the cent, and binary
floats do not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final, Literal

__all__ = [
    "DEFAULT_PRICES",
    "LIVE_WEBRTC_START_S",
    "MONEY_QUANTUM",
    "PRICE_FIELDS",
    "Price",
    "PriceTable",
    "Unit",
    "Usage",
    "cost",
    "money",
]

MONEY_QUANTUM: Final = Decimal("1e-10")
"""Costs are rounded (half-even) to 1e-10 USD: exact for every published price."""

Unit = Literal["tokens", "seconds"]
"""What a usage row counts: tokens, or seconds of audio for duration-priced models."""

LIVE_WEBRTC_START_S: Final = 15
"""Seconds of GPT-Live a WebRTC ``POST /v1/live/sessions`` bills while the session
initializes, credited against its duration once it runs: "Don't add another 15 seconds
to the running session's duration" (https://developers.openai.com/api/docs/guides/voice-latency-cost,
"WebRTC initialization charges"). So a WebRTC session costs at least this long."""

_MILLION: Final = Decimal(1_000_000)
_SIXTY: Final = Decimal(60)


@dataclass(frozen=True, slots=True, kw_only=True)
class Price:
    """One model's prices; ``None`` means the model is not sold for that modality."""

    text_in: Decimal | None = None
    text_cached: Decimal | None = None
    text_out: Decimal | None = None
    audio_in: Decimal | None = None
    audio_cached: Decimal | None = None
    audio_out: Decimal | None = None
    image_in: Decimal | None = None
    image_cached: Decimal | None = None
    per_minute: Decimal | None = None
    """USD per minute of audio, for models billed by duration (ASR, translation)."""
    per_second: Decimal | None = None
    """USD per second of audio (GPT-Live); takes precedence over ``per_minute``."""

    @property
    def by_duration(self) -> bool:
        """Whether the model's main usage is priced in seconds rather than tokens."""
        return self.per_second is not None or self.per_minute is not None


PRICE_FIELDS: Final = tuple(f.name for f in dataclasses.fields(Price))


def _p(*values: str | None, image: tuple[str, str] | None = None) -> Price:
    """Build a realtime price row in the column order of protocol.md §8."""
    text_in, text_cached, text_out, audio_in, audio_cached, audio_out = (
        None if v is None else Decimal(v) for v in values
    )
    return Price(
        text_in=text_in,
        text_cached=text_cached,
        text_out=text_out,
        audio_in=audio_in,
        audio_cached=audio_cached,
        audio_out=audio_out,
        image_in=Decimal(image[0]) if image else None,
        image_cached=Decimal(image[1]) if image else None,
    )


_GPT_REALTIME: Final = _p("4.00", "0.40", "16.00", "32.00", "0.40", "64.00", image=("5.00", "0.50"))
_GPT_REALTIME_MINI: Final = _p(
    "0.60", "0.06", "2.40", "10.00", "0.30", "20.00", image=("0.80", "0.08")
)
_GPT_4O_REALTIME: Final = _p("5.00", "2.50", "20.00", "40.00", "2.50", "80.00")
_GPT_4O_REALTIME_LAUNCH: Final = _p("5.00", "2.50", "20.00", "100.00", "20.00", "200.00")
_GPT_4O_MINI_REALTIME: Final = _p("0.60", "0.30", "2.40", "10.00", "0.30", "20.00")

_GPT_REALTIME_2: Final = dataclasses.replace(_GPT_REALTIME, text_out=Decimal("24.00"))
_LIVE: Final = Price(per_minute=Decimal("0.05"))
_STREAMING_ASR: Final = Price(per_minute=Decimal("0.017"))

DEFAULT_PRICES: Final[Mapping[str, Price]] = {
    # protocol.md §8; dated names are the snapshots the aliases pointed at.
    "gpt-realtime": _GPT_REALTIME,
    "gpt-realtime-2025-08-28": _GPT_REALTIME,
    "gpt-realtime-1.5": _GPT_REALTIME,
    "gpt-realtime-2": _GPT_REALTIME_2,
    # https://developers.openai.com/api/docs/models/gpt-realtime-2.1: as gpt-realtime-2.
    # Reasoning tokens are output tokens (the pages: "Higher reasoning effort can increase
    # ... output token usage"); see Usage.from_response_done.
    "gpt-realtime-2.1": _GPT_REALTIME_2,
    "gpt-realtime-mini": _GPT_REALTIME_MINI,
    "gpt-realtime-mini-2025-10-06": _GPT_REALTIME_MINI,
    # https://developers.openai.com/api/docs/models/gpt-realtime-2.1-mini: as gpt-realtime-mini.
    "gpt-realtime-2.1-mini": _GPT_REALTIME_MINI,
    "gpt-4o-realtime-preview": _GPT_4O_REALTIME,
    "gpt-4o-realtime-preview-2024-12-17": _GPT_4O_REALTIME,
    "gpt-4o-realtime-preview-2025-06-03": _GPT_4O_REALTIME,
    "gpt-4o-realtime-preview-2024-10-01": _GPT_4O_REALTIME_LAUNCH,
    "gpt-4o-mini-realtime-preview": _GPT_4O_MINI_REALTIME,
    "gpt-4o-mini-realtime-preview-2024-12-17": _GPT_4O_MINI_REALTIME,
    # GPT-Live: "$0.05 per minute, billed per second", not rounded up
    # (https://developers.openai.com/api/docs/models/gpt-live-1). gpt-live-1.1 has the same
    # active rate and $0.02/min standby for paused WebRTC sessions
    # (https://developers.openai.com/api/docs/models/gpt-live-1.1); usage events do not
    # split the two, so every second is priced active: a bill never above this estimate.
    "gpt-live-1": _LIVE,
    "gpt-live-1.1": _LIVE,
    # Realtime translation, per minute of audio
    # (https://developers.openai.com/api/docs/models/gpt-realtime-translate).
    "gpt-realtime-translate": Price(per_minute=Decimal("0.034")),
    # Input transcription is billed at the ASR model's own price (protocol.md §8).
    "whisper-1": Price(per_minute=Decimal("0.006")),
    # Streaming ASR priced by audio duration
    # (https://developers.openai.com/api/docs/models/gpt-realtime-whisper and
    # https://developers.openai.com/api/docs/models/gpt-live-transcribe).
    "gpt-realtime-whisper": _STREAMING_ASR,
    "gpt-live-transcribe": _STREAMING_ASR,
    "gpt-4o-transcribe": Price(
        text_in=Decimal("2.50"), audio_in=Decimal("6.00"), text_out=Decimal("10.00")
    ),
    "gpt-4o-mini-transcribe": Price(
        text_in=Decimal("1.25"), audio_in=Decimal("3.00"), text_out=Decimal("5.00")
    ),
}


class PriceTable(Mapping[str, Price]):
    """Model name → ``Price``; the shipped table plus whatever config adds or changes."""

    __slots__ = ("_prices",)

    def __init__(self, prices: Mapping[str, Price] = DEFAULT_PRICES) -> None:
        self._prices = dict(prices)

    def __getitem__(self, model: str) -> Price:
        return self._prices[model]

    def __iter__(self) -> Iterator[str]:
        return iter(self._prices)

    def __len__(self) -> int:
        return len(self._prices)

    def with_overrides(self, overrides: Mapping[str, Mapping[str, Decimal]]) -> PriceTable:
        """A new table where ``overrides`` (``settings.prices``) change or add models.

        A known model keeps the fields the override does not name; a new model has
        only the fields given.

        Raises:
            ValueError: an override names an unknown field or a negative price.
        """
        prices = dict(self._prices)
        for model, fields in overrides.items():
            unknown = set(fields) - set(PRICE_FIELDS)
            if unknown:
                raise ValueError(
                    f"prices.{model}: unknown field(s) {', '.join(sorted(unknown))}; "
                    f"expected {', '.join(PRICE_FIELDS)}"
                )
            values = {k: Decimal(v) for k, v in fields.items()}
            for k, v in values.items():
                if not v.is_finite() or v < 0:
                    raise ValueError(f"prices.{model}.{k} must be a non-negative number")
            prices[model] = dataclasses.replace(prices.get(model, Price()), **values)
        return PriceTable(prices)

    def cost(self, model: str, usage: Usage) -> Decimal | None:
        """``cost(self[model], usage)``, or ``None`` for a model the table does not know."""
        price = self._prices.get(model)
        return None if price is None else cost(price, usage)


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Billable quantities of one response or one transcription.

    ``cached_*`` are a subset of ``input_*`` (protocol.md §4).
    """

    input_text: int = 0
    input_audio: int = 0
    input_image: int = 0
    cached_text: int = 0
    cached_audio: int = 0
    cached_image: int = 0
    output_text: int = 0
    output_audio: int = 0
    seconds: Decimal = Decimal(0)
    """Seconds of audio billed by duration (Live, translation, ASR priced per minute)."""

    @property
    def unit(self) -> Unit:
        """``seconds`` for usage counted only in seconds, else ``tokens``."""
        if self.seconds and not (self.input_tokens or self.output_tokens):
            return "seconds"
        return "tokens"

    @classmethod
    def of_seconds(cls, seconds: Decimal) -> Usage:
        """Duration usage (never negative)."""
        return cls(seconds=max(seconds, Decimal(0)))

    @property
    def input_tokens(self) -> int:
        return self.input_text + self.input_audio + self.input_image

    @property
    def output_tokens(self) -> int:
        return self.output_text + self.output_audio

    @classmethod
    def from_response_done(cls, response: Mapping[str, Any]) -> Usage:
        """Parse ``response.usage`` of a ``response.done`` (GA or beta shape).

        Accepts the ``response`` object or the whole event. Missing or malformed
        numbers count as 0, and cached counts are capped at their input counts, so
        a provider quirk can never produce a negative cost. When the older beta
        shape gives ``cached_tokens`` without a per-modality split, the cached
        tokens are counted against text first, then audio.
        """
        if response.get("type") == "response.done" and isinstance(response.get("response"), dict):
            response = response["response"]
        usage = _dict(response.get("usage"))
        inp = _dict(usage.get("input_token_details"))
        out = _dict(usage.get("output_token_details"))
        text, audio = _int(inp, "text_tokens"), _int(inp, "audio_tokens")
        image = _int(inp, "image_tokens")
        if not inp:  # no split at all: all input is text (never seen, but never lost)
            text = _int(usage, "input_tokens")
        details = inp.get("cached_tokens_details")
        if isinstance(details, dict):
            c_text, c_audio = _int(details, "text_tokens"), _int(details, "audio_tokens")
            c_image = _int(details, "image_tokens")
        else:
            cached = _int(inp, "cached_tokens")
            c_text = min(cached, text)
            c_audio = cached - c_text
            c_image = 0
        out_text, out_audio = _int(out, "text_tokens"), _int(out, "audio_tokens")
        # Output not in the text/audio split (a reasoning model's reasoning tokens) is
        # billed as text output, as OpenAI bills reasoning.
        out_text += max(_int(usage, "output_tokens") - out_text - out_audio, 0)
        return cls(
            input_text=text,
            input_audio=audio,
            input_image=image,
            cached_text=min(c_text, text),
            cached_audio=min(c_audio, audio),
            cached_image=min(c_image, image),
            output_text=out_text,
            output_audio=out_audio,
        )

    @classmethod
    def from_responses(cls, usage: Mapping[str, Any]) -> Usage:
        """Parse the Responses API's ``response.usage`` (a Live delegated response).

        ``input_tokens`` with ``input_tokens_details.cached_tokens`` and ``output_tokens``,
        which already include ``output_tokens_details.reasoning_tokens``: reasoning is
        billed as output (https://platform.openai.com/docs/guides/reasoning, "reasoning
        tokens ... are billed as output tokens"). A delegated response is text.
        """
        text = _int(usage, "input_tokens")
        cached = _int(_dict(usage.get("input_tokens_details")), "cached_tokens")
        return cls(
            input_text=text, cached_text=min(cached, text), output_text=_int(usage, "output_tokens")
        )

    @classmethod
    def from_transcription(cls, usage: Mapping[str, Any]) -> Usage:
        """Parse ``usage`` of ``conversation.item.input_audio_transcription.completed``.

        Either ``{"type": "tokens", ...}`` (input split into text and audio, output
        text) or ``{"type": "duration", "seconds": s}`` (protocol.md §4). Token
        usage without an input split counts all input as audio, which is what a
        transcription model hears.
        """
        if usage.get("type") == "duration" or ("seconds" in usage and "input_tokens" not in usage):
            seconds = usage.get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float | str):
                return cls()
            try:
                value = Decimal(str(seconds))
            except ArithmeticError:
                return cls()
            if not value.is_finite() or value <= 0:
                return cls()
            return cls(seconds=value)
        inp = _dict(usage.get("input_token_details"))
        if inp:
            text, audio = _int(inp, "text_tokens"), _int(inp, "audio_tokens")
        else:
            text, audio = 0, _int(usage, "input_tokens")
        return cls(input_text=text, input_audio=audio, output_text=_int(usage, "output_tokens"))


def cost(price: Price, usage: Usage) -> Decimal | None:
    """USD for ``usage`` at ``price``, rounded to ``MONEY_QUANTUM``.

    The formula of protocol.md §8: uncached input at the input price, cached
    input at the cached price (the input price when no cached price is
    published), output at the output price. ``None`` when the usage has a
    quantity the price does not cover (e.g. image tokens on a model without an
    image price): unpriced, never silently $0.
    """
    terms = (
        (usage.input_text - usage.cached_text, price.text_in),
        (usage.cached_text, _or(price.text_cached, price.text_in)),
        (usage.input_audio - usage.cached_audio, price.audio_in),
        (usage.cached_audio, _or(price.audio_cached, price.audio_in)),
        (usage.input_image - usage.cached_image, price.image_in),
        (usage.cached_image, _or(price.image_cached, price.image_in)),
        (usage.output_text, price.text_out),
        (usage.output_audio, price.audio_out),
    )
    per_million = Decimal(0)
    for tokens, unit in terms:
        if tokens:
            if unit is None:
                return None
            per_million += tokens * unit
    total = per_million / _MILLION
    if usage.seconds:
        if price.per_second is not None:
            total += usage.seconds * price.per_second
        elif price.per_minute is not None:
            total += usage.seconds * price.per_minute / _SIXTY
        else:
            return None
    return money(total)


def money(value: Decimal) -> Decimal:
    """``value`` rounded half-even to ``MONEY_QUANTUM``, trailing zeros dropped (1.50 → 1.5)."""
    value = value.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def _or(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return b if a is None else a


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return max(value, 0)
