"""Usage parsing and cost arithmetic against hand-computed decimals (protocol.md §4, §8)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from rtrelay import config
from rtrelay.ledger.prices import DEFAULT_PRICES, PRICE_FIELDS, Price, PriceTable, Usage, cost

# protocol.md §4: total 253 = input 132 (text 119 + audio 13; cached 64, all text)
#                            + output 121 (text 30 + audio 91).
GA_RESPONSE: dict[str, Any] = {
    "object": "realtime.response",
    "id": "resp_1",
    "status": "completed",
    "usage": {
        "total_tokens": 253,
        "input_tokens": 132,
        "output_tokens": 121,
        "input_token_details": {
            "text_tokens": 119,
            "audio_tokens": 13,
            "image_tokens": 0,
            "cached_tokens": 64,
            "cached_tokens_details": {"text_tokens": 64, "audio_tokens": 0, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": 30, "audio_tokens": 91},
    },
}
EXAMPLE = Usage(input_text=119, input_audio=13, cached_text=64, output_text=30, output_audio=91)


def test_response_done_usage_parses_the_ga_example() -> None:
    assert Usage.from_response_done(GA_RESPONSE) == EXAMPLE
    assert EXAMPLE.input_tokens == 132 and EXAMPLE.output_tokens == 121


def test_response_done_accepts_the_whole_event() -> None:
    event = {"type": "response.done", "event_id": "event_1", "response": GA_RESPONSE}
    assert Usage.from_response_done(event) == EXAMPLE


def test_beta_usage_without_image_tokens_parses() -> None:
    beta = {
        "usage": {
            "total_tokens": 253,
            "input_tokens": 132,
            "output_tokens": 121,
            "input_token_details": {
                "cached_tokens": 64,
                "text_tokens": 119,
                "audio_tokens": 13,
                "cached_tokens_details": {"text_tokens": 64, "audio_tokens": 0},
            },
            "output_token_details": {"text_tokens": 30, "audio_tokens": 91},
        }
    }
    assert Usage.from_response_done(beta) == EXAMPLE


def test_beta_cached_tokens_without_split_count_against_text_first() -> None:
    usage = Usage.from_response_done(
        {
            "usage": {
                "input_token_details": {"cached_tokens": 70, "text_tokens": 64, "audio_tokens": 20},
                "output_token_details": {"text_tokens": 1, "audio_tokens": 0},
            }
        }
    )
    assert (usage.cached_text, usage.cached_audio) == (64, 6)


def test_missing_or_malformed_usage_counts_zero_and_never_negative() -> None:
    assert Usage.from_response_done({"status": "failed", "usage": None}) == Usage()
    odd = Usage.from_response_done(
        {
            "usage": {
                "input_token_details": {
                    "text_tokens": -5,
                    "audio_tokens": "12",
                    "cached_tokens_details": {"text_tokens": 9, "audio_tokens": True},
                },
                "output_token_details": {"text_tokens": 3.5, "audio_tokens": 7},
            }
        }
    )
    assert odd == Usage(output_audio=7)  # cached capped at input (0), junk ignored
    assert cost(DEFAULT_PRICES["gpt-realtime"], odd) == Decimal("0.000448")


def test_cost_of_the_example_on_gpt_realtime() -> None:
    # (119-64)*4.00 + 64*0.40 + 13*32.00 + 30*16.00 + 91*64.00 = 6965.6 per 1M tokens
    assert PriceTable().cost("gpt-realtime", EXAMPLE) == Decimal("0.0069656")


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # (55*5 + 64*2.5 + 13*40 + 30*20 + 91*80) / 1e6
        ("gpt-4o-realtime-preview", Decimal("0.008835")),
        ("gpt-4o-realtime-preview-2024-12-17", Decimal("0.008835")),
        # (55*5 + 64*2.5 + 13*100 + 30*20 + 91*200) / 1e6
        ("gpt-4o-realtime-preview-2024-10-01", Decimal("0.020535")),
        # (55*0.6 + 64*0.3 + 13*10 + 30*2.4 + 91*20) / 1e6
        ("gpt-4o-mini-realtime-preview", Decimal("0.0020742")),
        # (55*0.6 + 64*0.06 + 13*10 + 30*2.4 + 91*20) / 1e6
        ("gpt-realtime-mini", Decimal("0.00205884")),
        # gpt-realtime with text out at 24: 6965.6 + 30*8
        ("gpt-realtime-2", Decimal("0.0072056")),
    ],
)
def test_cost_of_the_example_on_each_model(model: str, expected: Decimal) -> None:
    assert PriceTable().cost(model, EXAMPLE) == expected


def test_cached_audio_and_images_use_their_own_prices() -> None:
    usage = Usage(
        input_text=10,
        input_audio=1000,
        input_image=200,
        cached_audio=600,
        cached_image=100,
        output_audio=50,
    )
    # text 10*4 + audio 400*32 + cached audio 600*0.4 + image 100*5 + cached image 100*0.5
    # + audio out 50*64 = 40 + 12800 + 240 + 500 + 50 + 3200 = 16830
    assert PriceTable().cost("gpt-realtime", usage) == Decimal("0.01683")


def test_unknown_model_is_unpriced_not_free() -> None:
    assert PriceTable().cost("gpt-9-realtime", EXAMPLE) is None


def test_a_modality_without_a_price_makes_the_response_unpriced() -> None:
    with_image = Usage(input_text=10, input_image=5)
    assert PriceTable().cost("gpt-4o-realtime-preview", with_image) is None
    assert PriceTable().cost("gpt-realtime", with_image) == Decimal("0.000065")


def test_zero_usage_costs_zero_on_a_known_model() -> None:
    assert PriceTable().cost("gpt-realtime", Usage()) == Decimal(0)


def test_transcription_tokens_are_priced_at_the_asr_model() -> None:
    usage = Usage.from_transcription(
        {
            "type": "tokens",
            "total_tokens": 36,
            "input_tokens": 26,
            "input_token_details": {"text_tokens": 6, "audio_tokens": 20},
            "output_tokens": 10,
        }
    )
    assert usage == Usage(input_text=6, input_audio=20, output_text=10)
    # 6*2.5 + 20*6 + 10*10 = 235 ; mini: 6*1.25 + 20*3 + 10*5 = 117.5
    assert PriceTable().cost("gpt-4o-transcribe", usage) == Decimal("0.000235")
    assert PriceTable().cost("gpt-4o-mini-transcribe", usage) == Decimal("0.0001175")


def test_transcription_tokens_without_split_count_as_audio() -> None:
    usage = Usage.from_transcription({"type": "tokens", "input_tokens": 20, "output_tokens": 4})
    assert usage == Usage(input_audio=20, output_text=4)


def test_transcription_duration_is_priced_per_minute() -> None:
    usage = Usage.from_transcription({"type": "duration", "seconds": 7.5})
    assert usage == Usage(seconds=Decimal("7.5"))
    assert PriceTable().cost("whisper-1", usage) == Decimal("0.00075")  # 7.5/60 * 0.006
    # A duration on a token-priced model cannot be priced: flagged, not $0.
    assert PriceTable().cost("gpt-4o-transcribe", usage) is None


def test_transcription_duration_junk_counts_zero() -> None:
    for raw in ({"type": "duration", "seconds": "x"}, {"type": "duration", "seconds": -1}):
        assert Usage.from_transcription(raw) == Usage()


def test_overrides_change_and_add_models_without_touching_the_default() -> None:
    table = PriceTable().with_overrides(
        {
            "gpt-realtime": {"text_out": Decimal("20")},
            "my-model": {"text_in": Decimal("1"), "text_out": Decimal("2")},
        }
    )
    changed = table["gpt-realtime"]
    assert changed.text_out == Decimal("20") and changed.audio_out == Decimal("64.00")
    assert table["my-model"] == Price(text_in=Decimal("1"), text_out=Decimal("2"))
    assert table.cost("my-model", Usage(input_text=1_000_000, output_text=500_000)) == 2
    assert PriceTable()["gpt-realtime"].text_out == Decimal("16.00")
    assert len(table) == len(DEFAULT_PRICES) + 1 and "my-model" in table


def test_overrides_reject_unknown_fields_and_negative_prices() -> None:
    with pytest.raises(ValueError, match="unknown field"):
        PriceTable().with_overrides({"gpt-realtime": {"txt_in": Decimal(1)}})
    with pytest.raises(ValueError, match="non-negative"):
        PriceTable().with_overrides({"gpt-realtime": {"text_in": Decimal(-1)}})


def test_costs_are_rounded_half_even_to_1e_10() -> None:
    price = Price(text_in=Decimal("0.00015"))  # 1.5e-10 per token
    assert cost(price, Usage(input_text=1)) == Decimal("2E-10")
    assert cost(price, Usage(input_text=3)) == Decimal("4E-10")  # 4.5e-10 → 4e-10


def test_every_shipped_price_is_a_non_negative_decimal() -> None:
    for model, price in DEFAULT_PRICES.items():
        values = [getattr(price, f) for f in PRICE_FIELDS]
        assert all(v is None or (isinstance(v, Decimal) and v >= 0) for v in values), model
        assert any(v is not None for v in values), model


@pytest.mark.parametrize(
    ("model", "minutes", "usd"),
    [
        ("gpt-live-1", 1, "0.05"),  # billed per second at $0.05 a minute
        ("gpt-live-1.1", 2, "0.1"),
        ("gpt-realtime-translate", 1, "0.034"),
        ("gpt-realtime-whisper", 10, "0.17"),
        ("gpt-live-transcribe", 1, "0.017"),
    ],
)
def test_duration_priced_models_cost_their_published_rate(
    model: str, minutes: int, usd: str
) -> None:
    assert PriceTable().cost(model, Usage.of_seconds(Decimal(60 * minutes))) == Decimal(usd)
    assert PriceTable()[model].by_duration
    assert Usage.of_seconds(Decimal(1)).unit == "seconds"


def test_a_per_second_override_takes_precedence_and_config_names_it() -> None:
    table = PriceTable().with_overrides({"gpt-live-1": {"per_second": Decimal("0.001")}})
    assert table.cost("gpt-live-1", Usage.of_seconds(Decimal(90))) == Decimal("0.09")
    assert PriceTable().cost("gpt-realtime", Usage.of_seconds(Decimal(1))) is None  # unpriced


def test_the_2_1_realtime_models_are_priced_like_their_predecessors() -> None:
    assert PriceTable()["gpt-realtime-2.1"] == PriceTable()["gpt-realtime-2"]
    assert PriceTable()["gpt-realtime-2.1-mini"] == PriceTable()["gpt-realtime-mini"]


def test_output_outside_the_text_audio_split_is_billed_as_text_output() -> None:
    """A reasoning model's reasoning tokens are output tokens OpenAI bills at the text rate."""
    done = {
        "usage": {
            "input_tokens": 10,
            "output_tokens": 150,
            "input_token_details": {"text_tokens": 10},
            "output_token_details": {"text_tokens": 20, "audio_tokens": 100},
        }
    }
    assert Usage.from_response_done(done) == Usage(input_text=10, output_text=50, output_audio=100)


def test_responses_usage_counts_cached_and_reasoning_tokens() -> None:
    usage = {
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 500},  # never more than the input
        "output_tokens": 40,
        "output_tokens_details": {"reasoning_tokens": 30},
    }
    assert Usage.from_responses(usage) == Usage(input_text=100, cached_text=100, output_text=40)


def test_config_prices_take_the_duration_fields() -> None:
    settings = config.from_mapping(
        {
            "prices": {
                "gpt-live-1": {"per_second": 0.001},
                "my-translator": {"per_minute": "0.02"},
            }
        },
        environ={},
    )
    table = PriceTable().with_overrides(settings.prices)
    assert table.cost("gpt-live-1", Usage.of_seconds(Decimal(10))) == Decimal("0.01")
    assert table.cost("my-translator", Usage.of_seconds(Decimal(30))) == Decimal("0.01")
    with pytest.raises(ValueError, match="per_second"):  # the error lists the known fields
        PriceTable().with_overrides({"gpt-live-1": {"per_hour": Decimal(1)}})
