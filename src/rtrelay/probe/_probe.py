"""``probe()``: observe each step of a Realtime connection, then explain it."""

from __future__ import annotations

import dataclasses
import ipaddress
import ssl
from dataclasses import dataclass

from rtrelay.probe._explain import ExitCode, Explanation, explain
from rtrelay.probe._explain_webrtc import explain_webrtc
from rtrelay.probe._network import observe_dns, observe_tcp_tls
from rtrelay.probe._observations import Observations
from rtrelay.probe._paths import observe_paths
from rtrelay.probe._render import render_json, render_text
from rtrelay.probe._target import ProbeUsageError, Target, plan, plan_webrtc
from rtrelay.probe._webrtc import observe_call
from rtrelay.probe._websocket import observe_websocket

__all__ = ["ProbeReport", "probe", "probe_webrtc"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeReport:
    """What the probe saw (``observations``) and what it means (``explanation``)."""

    target: Target
    observations: Observations
    explanation: Explanation

    @property
    def exit_code(self) -> ExitCode:
        return self.explanation.exit_code

    @property
    def ok(self) -> bool:
        """A session was established (``session.created`` received, on a WebSocket or a
        call's data channel)."""
        return self.explanation.ok

    def text(self) -> str:
        return render_text(self.target, self.explanation)

    def json(self) -> str:
        return render_json(self.target, self.observations, self.explanation)


async def probe(
    url: str,
    *,
    key: str | None = None,
    model: str | None = None,
    origin: str | None = None,
    subprotocol_auth: bool = False,
    beta: bool = False,
    timeout: float = 10.0,
    events: int = 5,
    quiet: float = 1.0,
    cafile: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> ProbeReport:
    """Connect to ``url`` as a browser or a server SDK would, and say what happened.

    The probe only listens: it sends no client event (nothing is billed) and
    closes with 1000 after ``events`` events or ``quiet`` seconds of silence. A
    GPT-Live URL (``…/v1/live/sessions``) is the exception: its session starts only
    with ``session.start``, so the probe sends that, waits for ``session.started``,
    and ends the session with ``session.close`` (no audio is sent: Live bills audio
    seconds, so nothing is billed either).

    Args:
        url: the relay or provider, e.g. ``ws://127.0.0.1:8080/v1`` or a full
            ``…/v1/realtime?model=…`` URL.
        key: the credential; sent, never shown (the report masks it).
        model: the model to ask for (default: the URL's, else ``gpt-realtime``;
            ``gpt-realtime-translate`` for a translation URL, ``gpt-live-1`` for Live).
        origin: the ``Origin`` header a browser page would send.
        subprotocol_auth: authenticate with subprotocols, as a browser does.
        beta: ask for the beta API shape.
        timeout: seconds each step may take.
        events: how many events to watch before closing.
        quiet: seconds of silence after which a healthy session is closed.
        cafile: trust the CA certificates in this PEM file instead of the system's.
        ssl_context: verify wss:// with this context (overrides ``cafile``).

    Raises:
        ProbeUsageError: the URL or options cannot describe a Realtime connection.
    """
    if timeout <= 0 or quiet < 0 or events < 1:
        raise ProbeUsageError("timeout must be positive, quiet non-negative, events at least 1")
    target, request = plan(
        url, key=key, model=model, origin=origin, subprotocol_auth=subprotocol_auth, beta=beta
    )
    observations, context, reached = await _reach(target, timeout, cafile, ssl_context)
    if reached:
        upgrade, session = await observe_websocket(
            request,
            ssl_context=context,
            timeout=timeout,
            events=events,
            quiet=quiet,
            established=target.established,
        )
        observations = dataclasses.replace(observations, upgrade=upgrade, session=session)
        if upgrade.status == 404 and upgrade.error is None and upgrade.failure is None:
            paths = await observe_paths(request.url, ssl_context=context, timeout=timeout)
            observations = dataclasses.replace(observations, paths=paths)
    return ProbeReport(
        target=target, observations=observations, explanation=explain(target, observations)
    )


async def probe_webrtc(
    url: str,
    *,
    key: str | None = None,
    model: str | None = None,
    origin: str | None = None,
    timeout: float = 10.0,
    cafile: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> ProbeReport:
    """Set a WebRTC call up with ``url`` as a browser page would, and say what happened.

    DNS, TCP and TLS as for a WebSocket, then the POST of an SDP offer (aiortc, no
    STUN or TURN server), the answer, ICE, DTLS, the ``oai-events`` data channel and
    ``session.created`` on it; then the call is hung up. No client event is sent.

    Args:
        url: the relay or an OpenAI-compatible server: a base URL
            (``http://127.0.0.1:8080/v1``) or the calls URL.
        key: an API key or an ``ek_`` client token; sent, never shown.
        model: the model to ask for (default: the URL's, else ``gpt-realtime``).
        origin: the ``Origin`` a browser page would send (its CORS answer is checked).
        timeout: seconds each step may take.
        cafile / ssl_context: as for ``probe``.

    Raises:
        ProbeUsageError: the URL or options cannot describe a WebRTC call.
    """
    if timeout <= 0:
        raise ProbeUsageError("timeout must be positive")
    target, request = plan_webrtc(url, key=key, model=model, origin=origin)
    observations, context, reached = await _reach(target, timeout, cafile, ssl_context)
    if reached:
        loopback = all(ipaddress.ip_address(a).is_loopback for a in observations.dns.addresses)
        offer, call = await observe_call(
            request, loopback=loopback, ssl_context=context, timeout=timeout
        )
        observations = dataclasses.replace(observations, offer=offer, call=call)
    return ProbeReport(
        target=target,
        observations=observations,
        explanation=explain_webrtc(target, observations),
    )


async def _reach(
    target: Target, timeout: float, cafile: str | None, ssl_context: ssl.SSLContext | None
) -> tuple[Observations, ssl.SSLContext | None, bool]:
    """DNS, TCP and TLS observed; the TLS context to go on with, and whether to go on."""
    observations = Observations(dns=await observe_dns(target.host, target.port, timeout))
    if observations.dns.error is not None:
        return observations, None, False
    context = None
    if target.secure:
        context = ssl_context or ssl.create_default_context(cafile=cafile)
    tcp, tls = await observe_tcp_tls(observations.dns, tls=context, timeout=timeout)
    observations = dataclasses.replace(observations, tcp=tcp, tls=tls)
    return observations, context, tcp.connected is not None and (tls is None or tls.ok)
