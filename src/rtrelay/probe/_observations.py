"""What the probe saw at each step, as plain data: no judgement, no I/O.

The I/O modules fill these in; ``_explain`` turns them into words. Times are
milliseconds measured by the observer. Everything taken from the wire has
already been through ``redact`` (servers may echo the key back).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "CallObservation",
    "CloseSeen",
    "DnsObservation",
    "ErrorInfo",
    "HangupObservation",
    "HttpAnswer",
    "Observations",
    "OfferObservation",
    "PathCheck",
    "SdpSummary",
    "SessionObservation",
    "TcpAttempt",
    "TcpObservation",
    "TcpOutcome",
    "TlsObservation",
    "TlsProblem",
    "UpgradeObservation",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsObservation:
    host: str
    port: int
    addresses: tuple[str, ...] = ()
    literal: bool = False
    """The host is an IP address: nothing was resolved."""
    error: str | None = None
    elapsed_ms: float = 0.0


TcpOutcome = Literal["connected", "refused", "timeout", "unreachable", "error"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpAttempt:
    address: str
    port: int
    outcome: TcpOutcome
    detail: str = ""
    elapsed_ms: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpObservation:
    attempts: tuple[TcpAttempt, ...]

    @property
    def connected(self) -> TcpAttempt | None:
        return next((a for a in self.attempts if a.outcome == "connected"), None)


TlsProblem = Literal["certificate", "not_tls", "handshake", "timeout", "reset"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsObservation:
    ok: bool
    elapsed_ms: float = 0.0
    version: str | None = None
    cipher: str | None = None
    subject: str | None = None
    issuer: str | None = None
    not_after: str | None = None
    problem: TlsProblem | None = None
    verify_code: int | None = None
    """OpenSSL's ``X509_V_ERR_*`` number when certificate verification failed."""
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorInfo:
    """An OpenAI-style ``error`` object, from a refusal body or an ``error`` event."""

    type: str | None = None
    code: str | None = None
    message: str | None = None
    param: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpAnswer:
    """The answer to the probe's request (the upgrade, or a call's offer POST)."""

    status: int | None = None
    reason: str = ""
    elapsed_ms: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)
    """The response headers that explain things (request id, subprotocol, Retry-After...)."""
    body: str = ""
    """The body of a refusal."""
    error: ErrorInfo | None = None
    """The body's ``error`` object, when it is OpenAI-style JSON."""
    failure: str | None = None
    """Why no HTTP answer (or no valid WebSocket answer) came back at all."""

    @property
    def request_id(self) -> str | None:
        return self.headers.get("X-Request-Id")


@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradeObservation(HttpAnswer):
    """The answer to the HTTP ``Upgrade: websocket`` request."""

    @property
    def upgraded(self) -> bool:
        return self.status == 101 and self.failure is None

    @property
    def echoed_protocol(self) -> str | None:
        return self.headers.get("Sec-WebSocket-Protocol")


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseSeen:
    by: Literal["server", "probe", "network"]
    code: int | None
    reason: str = ""
    at_ms: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionObservation:
    """What happened after the 101; times are counted from the start of the upgrade request."""

    event_types: tuple[str, ...] = ()
    errors: tuple[ErrorInfo, ...] = ()
    session_created_ms: float | None = None
    session_id: str | None = None
    model: str | None = None
    close: CloseSeen | None = None
    timed_out: bool = False
    """No ``session.created`` (and no close) within the timeout."""
    farewell: str | None = None
    """The client event the probe ended the session with (GPT-Live's ``session.close``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PathCheck:
    """After a 404 without an error body: the usual Realtime paths asked on the same server
    with a plain GET (no key, no upgrade), and the first that answered like a WebSocket
    endpoint (426 Upgrade Required, or an OpenAI-style JSON error that is not a 404)."""

    tried: tuple[str, ...] = ()
    found: str | None = None
    """The ws(s):// URL of that endpoint (no query)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SdpSummary:
    """What a WebRTC client needs from the SDP answer, read from its lines."""

    audio: bool = False
    """An ``m=audio`` section: the provider's voice and the microphone."""
    data_channel: bool = False
    """An ``m=application`` section (SCTP): the ``oai-events`` channel."""
    candidates: tuple[str, ...] = ()
    """ICE candidates as ``protocol address:port type``."""
    fingerprint: str | None = None
    """The DTLS certificate fingerprint (``sha-256 AB:CD:…``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferObservation(HttpAnswer):
    """The answer to the POST of a WebRTC SDP offer."""

    sdp: SdpSummary | None = None
    """The answer's SDP, when the status is 201."""

    @property
    def answered(self) -> bool:
        return self.status == 201 and self.failure is None


@dataclass(frozen=True, slots=True, kw_only=True)
class HangupObservation:
    """The probe's ``POST …/calls/{id}/hangup`` (``status``), or why it was not sent."""

    status: int | None = None
    error: ErrorInfo | None = None
    failure: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallObservation:
    """The call after its answer; times are counted from the start of the offer POST."""

    rejected: str | None = None
    """Why the probe's WebRTC stack refused the answer (``None``: it was applied)."""
    ice_state: str = "new"
    """The last ICE connection state seen (``completed``: a candidate pair works)."""
    ice_ms: float | None = None
    connection_state: str = "new"
    """The last peer connection state (``connected``: ICE and DTLS are done)."""
    connected_ms: float | None = None
    channel_ms: float | None = None
    """When the ``oai-events`` data channel opened."""
    session: SessionObservation | None = None
    """The events on the data channel (no close frame: ``close`` stays ``None``)."""
    hangup: HangupObservation | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Observations:
    """Everything one probe run saw, step by step; a later step is ``None`` if not reached."""

    dns: DnsObservation
    tcp: TcpObservation | None = None
    tls: TlsObservation | None = None
    upgrade: UpgradeObservation | None = None
    session: SessionObservation | None = None
    paths: PathCheck | None = None
    """Only when the upgrade got a 404 that is not a JSON error (a wrong path)."""
    offer: OfferObservation | None = None
    """WebRTC (``--webrtc``): the offer POST, instead of ``upgrade``."""
    call: CallObservation | None = None
    """WebRTC: the call after a 201, instead of ``session``."""
