"""The report as text for a person (one line per step) or as JSON for a machine."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Final

from rtrelay.probe._explain import Explanation, Mark
from rtrelay.probe._observations import Observations
from rtrelay.probe._target import Target

__all__ = ["render_json", "render_text"]

_MARKS: Final[dict[Mark, str]] = {"ok": "✓", "fail": "✗", "skip": "-"}


def _how(target: Target) -> str:
    if target.mode == "webrtc":
        how = "as a browser's WebRTC page would: POST an SDP offer with "
        how += f"Authorization: Bearer {target.key}" if target.key else "no key (pass --key)"
        how += f"; Origin {target.origin}" if target.origin else ""
        return how
    if target.mode == "browser":
        how = f"as a browser would: subprotocols {', '.join(target.protocols)}"
        how += f"; Origin {target.origin}" if target.origin else "; no Origin (pass --origin)"
    else:
        how = "as a server SDK would: "
        how += f"Authorization: Bearer {target.key}" if target.key else "no key (pass --key)"
        if target.origin:
            how += f"; Origin {target.origin}"
    if target.beta:
        how += "; beta shape asked for"
    if target.dialogue == "live":
        how += f"; then session.start for {target.model}, and session.close at the end"
    return how


def render_text(target: Target, explanation: Explanation) -> str:
    lines = [f"Probing {target.url}", f"  {_how(target)}"]
    for step in explanation.steps:
        lines.append(f"{_MARKS[step.mark]} {step.name}: {step.text}")
        lines.extend(f"    {detail}" for detail in step.details)
    mark = _MARKS["ok" if explanation.ok else "fail"]
    lines.append(f"{mark} Verdict: {explanation.verdict} (exit {int(explanation.exit_code)})")
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def render_json(target: Target, observations: Observations, explanation: Explanation) -> str:
    document = {
        "target": _plain(target),
        "observations": _plain(observations),
        "steps": [_plain(step) for step in explanation.steps],
        "verdict": explanation.verdict,
        "exit_code": int(explanation.exit_code),
        "ok": explanation.ok,
    }
    return json.dumps(document, ensure_ascii=False, indent=2)
