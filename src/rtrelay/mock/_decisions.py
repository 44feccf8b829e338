"""A simulated Decision API answer for a GPT-Live session that delegates to Decisions.

``decision.create`` (``openai/types/live/decision_create_event.py``) evaluates the
session's configured questions; the answer is a ``decision.event`` whose
``decision.completed`` carries a ``Decision`` (``openai/types/decision.py``): one answer
per question, in order, and token usage. Answers are canned and confident; usage counts
the questions' instructions and the transcript heard so far, so a meter can check it.
"""

from __future__ import annotations

from typing import Any, Final

from rtrelay.mock._usage import text_tokens

__all__ = ["decision"]

# Tokens a Decision request costs beyond its questions and the transcript.
_FRAMING_TOKENS: Final = 10
# Each answer (a label, a probability): what the model writes back.
_ANSWER_TOKENS: Final = 2
_CONFIDENCE: Final = 0.9


def decision(config: dict[str, Any], heard: str) -> dict[str, Any]:
    """The ``Decision`` for ``config`` (``decisions_delegation_config.py``: model, questions)."""
    questions = config.get("questions")
    questions = questions if isinstance(questions, list) else []
    answers = [_answer(q) for q in questions]
    instructions = " ".join(
        q["instructions"]
        for q in questions
        if isinstance(q, dict) and isinstance(q.get("instructions"), str)
    )
    input_tokens = _FRAMING_TOKENS + text_tokens(instructions) + text_tokens(heard)
    output_tokens = _ANSWER_TOKENS * len(answers)
    return {
        "answers": answers,
        "model": str(config.get("model", "")),
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cache_write_tokens": 0, "cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
    }


def _answer(question: Any) -> dict[str, Any]:
    """The first option, level or a yes, confidently; a refusal for what it cannot read."""
    if not isinstance(question, dict):
        return {"type": "refusal", "name": None}
    name = question.get("name")
    kind = question.get("type")
    options = question.get("choices") if kind == "choice" else question.get("levels")
    if kind == "predicate":
        return {"type": "predicate", "name": name, "probability": _CONFIDENCE}
    if (
        not isinstance(options, list)
        or not options
        or not all(isinstance(o, dict) for o in options)
    ):
        return {"type": "refusal", "name": name}
    rest = (1 - _CONFIDENCE) / (len(options) - 1) if len(options) > 1 else 0.0
    shares = [_CONFIDENCE if i == 0 else rest for i in range(len(options))]
    if kind == "choice":
        return {
            "type": "choice",
            "name": name,
            "choice": options[0].get("value"),
            "confidence": _CONFIDENCE,
            "probabilities": [
                {"value": o.get("value"), "probability": p}
                for o, p in zip(options, shares, strict=True)
            ],
        }
    if kind == "score":
        return {
            "type": "score",
            "name": name,
            "score": 0.0,
            "confidence": _CONFIDENCE,
            "probabilities": [
                {"label": o.get("label"), "probability": p, "value": i}
                for i, (o, p) in enumerate(zip(options, shares, strict=True))
            ],
        }
    return {"type": "refusal", "name": name}
