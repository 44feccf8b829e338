"""Observations → plain words: one step per line, then a verdict and an exit code.

Pure functions of ``Target`` and ``Observations``: no sockets, no clock, so
every explanation can be tested by building the observations by hand.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from typing import Final, Literal

from rtrelay.probe._meanings import (
    close_meaning,
    error_advice,
    error_meaning,
    reason_error_code,
    status_meaning,
    tls_verify_meaning,
)
from rtrelay.probe._observations import (
    CloseSeen,
    DnsObservation,
    ErrorInfo,
    Observations,
    PathCheck,
    SessionObservation,
    TcpObservation,
    TlsObservation,
    UpgradeObservation,
)
from rtrelay.probe._target import Target
from rtrelay.wire import KEY_SUBPROTOCOL_PREFIX, REALTIME_PATH_SUFFIX, REALTIME_SUBPROTOCOL

__all__ = [
    "ExitCode",
    "Explanation",
    "Mark",
    "Step",
    "done",
    "error_details",
    "explain",
    "ms",
    "reach",
    "session_steps",
]

Mark = Literal["ok", "fail", "skip"]


class ExitCode(enum.IntEnum):
    """The probe's exit status: 0 when a session was established, else the stage that failed.

    2 is left to argparse (bad command line).
    """

    OK = 0
    NO_SESSION = 1
    """The WebSocket opened, but no ``session.created`` came (error event, close, silence)."""
    DNS = 3
    TCP = 4
    TLS = 5
    HTTP = 6
    """The upgrade was refused (non-101) or got no valid HTTP answer."""
    CLIENT_REFUSES = 7
    """The server's 101 is one a real client rejects (missing or wrong subprotocol echo)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    name: str
    mark: Mark
    text: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    steps: tuple[Step, ...]
    verdict: str
    exit_code: ExitCode

    @property
    def ok(self) -> bool:
        return self.exit_code is ExitCode.OK


def explain(target: Target, obs: Observations) -> Explanation:
    """Say what each observed step means and give the overall verdict."""
    steps: list[Step] = []
    unreached = reach(target, obs, steps)
    if unreached is not None:
        return unreached
    if obs.upgrade is None:
        return done(steps, "the probe stopped before the HTTP upgrade", ExitCode.HTTP)
    steps.append(_upgrade(target, obs.upgrade, obs.paths))
    if not obs.upgrade.upgraded:
        return done(steps, _refusal_verdict(obs.upgrade, obs.paths), ExitCode.HTTP)
    protocol_step, refused_by = _subprotocol(target, obs.upgrade.echoed_protocol)
    if protocol_step is not None:
        steps.append(protocol_step)
    session = obs.session or SessionObservation()
    established = target.established
    steps.extend(session_steps(session, established=established))
    leak = _leaks(obs.upgrade.echoed_protocol)
    if refused_by is not None:
        got = (
            " (a client that does not check would get a session)"
            if session.session_created_ms is not None
            else ""
        )
        return done(steps, refused_by + got, ExitCode.CLIENT_REFUSES)
    if session.session_created_ms is None:
        return done(steps, _no_session_verdict(session, established), ExitCode.NO_SESSION)
    verdict = (
        f"a session was established: {established} "
        f"{ms(session.session_created_ms)} after the upgrade request"
    )
    if leak:
        verdict += ", but the server leaks the key in its handshake answer"
    return done(steps, verdict, ExitCode.OK)


def reach(target: Target, obs: Observations, steps: list[Step]) -> Explanation | None:
    """DNS, TCP and TLS, appended to ``steps``; the explanation if one of them failed."""
    steps.append(_dns(obs.dns))
    if obs.dns.error is not None or obs.tcp is None:
        return done(
            steps,
            f"the host name {obs.dns.host} does not resolve: check its spelling, or this "
            "machine's DNS and hosts file",
            ExitCode.DNS,
        )
    steps.append(_tcp(obs.tcp))
    if obs.tcp.connected is None:
        return done(
            steps,
            f"nothing accepts TCP connections at {obs.dns.host}:{obs.dns.port}",
            ExitCode.TCP,
        )
    steps.append(_tls(target, obs.tls))
    if obs.tls is not None and not obs.tls.ok:
        return done(steps, f"TLS failed: {_tls_problem(obs.tls, target)}", ExitCode.TLS)
    return None


def done(steps: list[Step], verdict: str, code: ExitCode) -> Explanation:
    return Explanation(steps=tuple(steps), verdict=verdict, exit_code=code)


def ms(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:.1f} s"
    if value >= 10:
        return f"{value:.0f} ms"
    return f"{value:.1f} ms"


def _dns(dns: DnsObservation) -> Step:
    if dns.literal:
        return Step(name="DNS", mark="ok", text=f"{dns.host} is an IP address: nothing to resolve")
    if dns.error is not None:
        return Step(
            name="DNS", mark="fail", text=f"the name {dns.host} does not resolve ({dns.error})"
        )
    return Step(
        name="DNS",
        mark="ok",
        text=f"{dns.host} resolves to {', '.join(dns.addresses)} in {ms(dns.elapsed_ms)}",
    )


def _tcp(tcp: TcpObservation) -> Step:
    failed = tuple(
        f"{a.address} port {a.port}: {_tcp_failure(a.outcome, a.detail)}"
        for a in tcp.attempts
        if a.outcome != "connected"
    )
    won = tcp.connected
    if won is not None:
        return Step(
            name="TCP",
            mark="ok",
            text=f"connected to {won.address} port {won.port} in {ms(won.elapsed_ms)}",
            details=failed,
        )
    if len(tcp.attempts) == 1:
        return Step(name="TCP", mark="fail", text=failed[0])
    return Step(name="TCP", mark="fail", text="no address accepted the connection", details=failed)


def _tcp_failure(outcome: str, detail: str) -> str:
    if outcome == "refused":
        return (
            "connection refused: nothing listens on this port (server not running, or wrong port?)"
        )
    if outcome == "timeout":
        return f"no answer ({detail}): a firewall may drop the packets, or the host is down"
    if outcome == "unreachable":
        return f"unreachable ({detail}): no network route to this address"
    return detail or outcome


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tls(target: Target, tls: TlsObservation | None) -> Step:
    details: tuple[str, ...] = ()
    if not target.secure or tls is None:
        if not _is_loopback(target.host):
            details = (
                f"the key and the audio cross the network unencrypted: use {_secure(target)}://",
            )
        return Step(name="TLS", mark="skip", text=f"not used ({target.scheme}://)", details=details)
    if tls.ok:
        parts = [tls.version or "TLS"]
        if tls.subject:
            parts.append(f"certificate for {tls.subject}")
        if tls.issuer:
            parts.append(f"issued by {tls.issuer}")
        if tls.not_after:
            parts.append(f"valid until {tls.not_after}")
        return Step(
            name="TLS", mark="ok", text=f"{', '.join(parts)}; handshake in {ms(tls.elapsed_ms)}"
        )
    if tls.problem == "certificate":
        details = (
            f"OpenSSL says: {tls.detail}",
            "clients accept such a certificate only if told to trust it (the probe: --cafile; "
            "browsers and SDKs: their trust store); better, use one from a public CA",
        )
    elif tls.detail:
        details = (tls.detail,)
    return Step(name="TLS", mark="fail", text=_tls_problem(tls, target), details=details)


def _secure(target: Target) -> str:
    return "https" if target.mode == "webrtc" else "wss"


def _tls_problem(tls: TlsObservation, target: Target) -> str:
    if tls.problem == "certificate":
        return f"the certificate was rejected: {tls_verify_meaning(tls.verify_code, tls.detail)}"
    if tls.problem == "not_tls":
        plain = "HTTP, use http" if target.mode == "webrtc" else "WebSocket, use ws"
        return f"the server does not speak TLS on this port (if it serves plain {plain}://)"
    if tls.problem == "timeout":
        return "no TLS handshake within the timeout"
    if tls.problem == "reset":
        return "the server closed the connection during the TLS handshake"
    return "the TLS handshake failed"


def error_details(error: ErrorInfo) -> list[str]:
    """An error object's lines: what it says, what it means, what to do."""
    lines = [f"error {error.type or '?'}.{error.code or '?'}: {error.message or '(no message)'}"]
    meaning = error_meaning(error.code)
    if meaning and meaning != error.message:
        lines.append(f"meaning: {meaning}")
    advice = error_advice(error.code)
    if advice:
        lines.append(f"what to do: {advice}")
    return lines


def _upgrade(target: Target, up: UpgradeObservation, paths: PathCheck | None = None) -> Step:
    rid = f" (X-Request-Id: {up.request_id})" if up.request_id else ""
    if up.failure is not None:
        return Step(name="HTTP upgrade", mark="fail", text=f"{up.failure}{rid}")
    if up.upgraded:
        return Step(
            name="HTTP upgrade",
            mark="ok",
            text=f"101 Switching Protocols in {ms(up.elapsed_ms)}{rid}",
        )
    status = up.status or 0
    if status == 404 and up.error is None:
        details: list[str] = [
            "HTTP 404: Not Found: nothing is served at this path (rtrelay's own 404, "
            "model_not_found, comes with a JSON error)"
        ]
    else:
        details = [f"HTTP {status}: {status_meaning(status)}"]
    if up.error is not None:
        details.extend(error_details(up.error))
        if target.mode == "server":
            details.append(_SDK_BODY_HINT)
    elif up.body:
        details.append(f"body: {up.body[:300]}")
    if paths is not None and paths.found is not None:
        details.append(
            f"this server answers as a Realtime endpoint at {paths.found}: use that URL, "
            f"or {_base_url(paths.found)} as an SDK's base URL"
        )
    elif paths is not None and paths.tried:
        details.append(
            f"nor does it answer at {', '.join(paths.tried)}: is this the relay's host and "
            "port? rtrelay serves the Realtime API at /v1/realtime"
        )
    retry = up.headers.get("Retry-After")
    if retry:
        details.append(f"retry after {retry} s (Retry-After)")
    location = up.headers.get("Location")
    if location:
        details.append(f"Location: {location}")
    if target.mode == "browser":
        details.append(
            "a browser sees none of this, only close code 1006; rtrelay explains refusals to "
            "browsers as an error event when handshake_errors is 'event' (or 'auto')"
        )
    return Step(
        name="HTTP upgrade",
        mark="fail",
        text=f"refused with {status} {up.reason} after {ms(up.elapsed_ms)}{rid}".replace("  ", " "),
        details=tuple(details),
    )


_SDK_BODY_HINT: Final = (
    "an SDK may show only the status (InvalidStatus: HTTP …): with the openai Python SDK "
    "read this JSON from the exception, e.response.body; with the Node SDK, from "
    "rt.socket.on('unexpected-response', (req, res) => …)"
)


def _base_url(endpoint: str) -> str:
    """The base URL an SDK takes for ``endpoint`` (it appends ``/realtime`` itself)."""
    return endpoint.removesuffix(REALTIME_PATH_SUFFIX)


def _refusal_verdict(up: UpgradeObservation, paths: PathCheck | None = None) -> str:
    if up.failure is not None:
        return f"no WebSocket answer: {up.failure}"
    text = f"the server refused the WebSocket upgrade with HTTP {up.status}"
    if paths is not None and paths.found is not None:
        return (
            f"{text}: nothing is served at this path; the Realtime endpoint is {paths.found} "
            f"(rtrelay probe {_base_url(paths.found)})"
        )
    if up.error is not None and up.error.code:
        text += f" ({up.error.code})"
        advice = error_advice(up.error.code)
        if advice:
            text += f": {advice}"
    return text


def _leaks(echoed: str | None) -> bool:
    return echoed is not None and KEY_SUBPROTOCOL_PREFIX in echoed


def _subprotocol(target: Target, echoed: str | None) -> tuple[Step | None, str | None]:
    """The subprotocol step, and why a client refuses the 101 (``None`` if it accepts it)."""
    offered = target.protocols
    name = "Subprotocol"
    if not offered:
        if echoed is None:
            return None, None
        why = f"the server chose subprotocol {echoed!r} though none was offered"
        return (
            Step(name=name, mark="fail", text=f"{why}; RFC 6455 clients must fail the connection"),
            why,
        )
    listed = ", ".join(offered)
    if echoed is None:
        why = "a browser will refuse the connection: the server did not echo a subprotocol"
        return (
            Step(
                name=name,
                mark="fail",
                text="the server did not echo a subprotocol: a browser will refuse the connection",
                details=(
                    f"offered: {listed}",
                    f"the server must answer 'Sec-WebSocket-Protocol: {REALTIME_SUBPROTOCOL}'; "
                    "browsers then report only close code 1006",
                ),
            ),
            why,
        )
    chosen = [p.strip() for p in echoed.split(",")]
    if len(chosen) > 1:
        why = (
            "a browser will refuse the connection: the server echoed several subprotocols "
            f"({echoed})"
        )
        return Step(name=name, mark="fail", text=f"{why}; it must choose exactly one"), why
    if _leaks(echoed):
        return (
            Step(
                name=name,
                mark="fail",
                text=f"the server echoed the key-bearing subprotocol {echoed}: that leaks the key",
                details=(
                    "response headers end up in proxies' and browsers' logs; the server should "
                    f"echo '{REALTIME_SUBPROTOCOL}'",
                ),
            ),
            None,
        )
    if echoed not in offered:
        why = (
            f"a browser will refuse the connection: the server echoed {echoed!r}, "
            "which was not offered"
        )
        return Step(name=name, mark="fail", text=why, details=(f"offered: {listed}",)), why
    return Step(
        name=name, mark="ok", text=f"the server echoed {echoed!r}, as a browser requires"
    ), None


def session_steps(
    session: SessionObservation,
    since: str = "the upgrade request",
    *,
    established: str = "session.created",
) -> list[Step]:
    """The session, its events and its close; times are counted from ``since``;
    ``established`` is the event that means a session runs."""
    steps: list[Step] = []
    created = session.session_created_ms
    early_errors = session.errors if created is None else ()
    if created is not None:
        about = [f"id {session.session_id}"] if session.session_id else []
        if session.model:
            about.append(f"model {session.model}")
        extra = f" ({', '.join(about)})" if about else ""
        steps.append(
            Step(
                name="Session",
                mark="ok",
                text=f"{established} {ms(created)} after {since}{extra}",
            )
        )
    elif early_errors:
        first = early_errors[0]
        steps.append(
            Step(
                name="Session",
                mark="fail",
                text=f"the server sent an error instead of {established}",
                details=tuple(error_details(first)),
            )
        )
    elif session.timed_out:
        steps.append(Step(name="Session", mark="fail", text=f"no {established} within the timeout"))
    else:
        steps.append(Step(name="Session", mark="fail", text=f"closed before {established}"))
    if session.event_types:
        later = session.errors if created is not None else session.errors[1:]
        details = tuple(line for e in later for line in error_details(e))
        steps.append(
            Step(
                name="Events",
                mark="fail" if later else "ok",
                text=f"{len(session.event_types)} received: {', '.join(session.event_types)}",
                details=details,
            )
        )
    if session.close is not None:
        shown = {e.code for e in session.errors}
        steps.append(_close(session.close, session, shown))
    return steps


def _close(close: CloseSeen, session: SessionObservation, shown: set[str | None]) -> Step:
    if close.by == "probe":
        return Step(
            name="Close",
            mark="ok",
            text=f"the probe closed the session with {close.code} (normal closure) after "
            f"{len(session.event_types)} event(s)",
        )
    if close.code is None or close.code == 1006:
        return Step(
            name="Close",
            mark="fail",
            text="the connection dropped without a close frame (1006): "
            "the server or something in between cut it",
        )
    if close.by == "network":
        return Step(
            name="Close",
            mark="fail",
            text=f"the probe's WebSocket failed ({close.reason}) and closed with {close.code}: "
            f"{close_meaning(close.code)}",
        )
    reason = f" {close.reason!r}" if close.reason else ""
    if session.farewell is not None:
        reason += f" after the probe's {session.farewell}"
    clean = close.code == 1000 and session.session_created_ms is not None
    details: list[str] = []
    if close.code == 3000:
        details.append(
            "3000 comes from the provider (OpenAI or one speaking its protocol); rtrelay relays "
            "it unchanged, while its own refusals close with 44xx/45xx"
        )
    code = reason_error_code(close.reason)
    if code is not None and code not in shown:
        meaning = error_meaning(code)
        if meaning:
            details.append(f"{code}: {meaning}")
        advice = error_advice(code)
        if advice:
            details.append(f"what to do: {advice}")
    return Step(
        name="Close",
        mark="ok" if clean else "fail",
        text=f"the server closed with {close.code}{reason}: {close_meaning(close.code)}",
        details=tuple(details),
    )


def _no_session_verdict(session: SessionObservation, established: str) -> str:
    head = "the WebSocket opened but no session was established"
    error = session.errors[0] if session.errors else None
    code = error.code if error else None
    if code is None and session.close is not None:
        code = reason_error_code(session.close.reason)
    if code is not None:
        advice = error_advice(code)
        return f"{head}: {code}" + (f": {advice}" if advice else "")
    if session.close is not None and session.close.by != "probe":
        return f"{head}: closed with {session.close.code} ({close_meaning(session.close.code)})"
    if session.timed_out:
        return f"{head}: no {established} within the timeout"
    return head
