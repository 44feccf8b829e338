"""``rtrelay probe``: connect like a browser or a server SDK and explain what goes wrong.

Observation (DNS, TCP, TLS, the HTTP upgrade, the session's first events) is
kept apart from explanation, which is pure: ``explain(target, observations)``
turns what was seen into one line per step, a verdict and an exit code.
"""

from __future__ import annotations

from rtrelay.probe._explain import ExitCode, Explanation, Step, explain
from rtrelay.probe._observations import (
    CloseSeen,
    DnsObservation,
    ErrorInfo,
    Observations,
    PathCheck,
    SessionObservation,
    TcpAttempt,
    TcpObservation,
    TlsObservation,
    UpgradeObservation,
)
from rtrelay.probe._probe import ProbeReport, probe
from rtrelay.probe._redact import mask_key
from rtrelay.probe._target import ProbeUsageError, Target, plan

__all__ = [
    "CloseSeen",
    "DnsObservation",
    "ErrorInfo",
    "ExitCode",
    "Explanation",
    "Observations",
    "PathCheck",
    "ProbeReport",
    "ProbeUsageError",
    "SessionObservation",
    "Step",
    "Target",
    "TcpAttempt",
    "TcpObservation",
    "TlsObservation",
    "UpgradeObservation",
    "explain",
    "mask_key",
    "plan",
    "probe",
]
