"""``rtrelay probe``: connect like a browser or a server SDK and explain what goes wrong.

Observation (DNS, TCP, TLS, the HTTP upgrade, the session's first events; for a
WebRTC call the offer POST, the SDP answer, ICE, DTLS and the data channel) is kept
apart from explanation, which is pure: ``explain(target, observations)`` (and
``explain_webrtc``) turn what was seen into one line per step, a verdict and an exit
code.
"""

from __future__ import annotations

from rtrelay.probe._explain import ExitCode, Explanation, Step, explain
from rtrelay.probe._explain_webrtc import explain_webrtc
from rtrelay.probe._observations import (
    CallObservation,
    CloseSeen,
    DnsObservation,
    ErrorInfo,
    HangupObservation,
    Observations,
    OfferObservation,
    PathCheck,
    SdpSummary,
    SessionObservation,
    TcpAttempt,
    TcpObservation,
    TlsObservation,
    UpgradeObservation,
)
from rtrelay.probe._probe import ProbeReport, probe, probe_webrtc
from rtrelay.probe._redact import mask_key
from rtrelay.probe._target import ProbeUsageError, Target, plan, plan_webrtc

__all__ = [
    "CallObservation",
    "CloseSeen",
    "DnsObservation",
    "ErrorInfo",
    "ExitCode",
    "Explanation",
    "HangupObservation",
    "Observations",
    "OfferObservation",
    "PathCheck",
    "ProbeReport",
    "ProbeUsageError",
    "SdpSummary",
    "SessionObservation",
    "Step",
    "Target",
    "TcpAttempt",
    "TcpObservation",
    "TlsObservation",
    "UpgradeObservation",
    "explain",
    "explain_webrtc",
    "mask_key",
    "plan",
    "plan_webrtc",
    "probe",
    "probe_webrtc",
]
