"""A WebRTC call's observations → plain words (``rtrelay probe --webrtc``).

Pure, like ``_explain``, whose DNS/TCP/TLS steps, error lines and session steps it
reuses: the offer POST, the SDP answer, ICE, DTLS, the ``oai-events`` channel,
``session.created`` and the hangup, then a verdict with the WebSocket probe's exit codes.
"""

from __future__ import annotations

from typing import Final

from rtrelay.probe._explain import (
    ExitCode,
    Explanation,
    Step,
    done,
    error_details,
    ms,
    reach,
    session_steps,
)
from rtrelay.probe._meanings import error_advice, status_meaning
from rtrelay.probe._observations import (
    CallObservation,
    HangupObservation,
    Observations,
    OfferObservation,
    SdpSummary,
)
from rtrelay.probe._target import Target
from rtrelay.wire import CALLS_PATH, EVENTS_CHANNEL

__all__ = ["explain_webrtc"]

_SINCE: Final = "the offer POST"
_SHOWN_CANDIDATES: Final = 3


def explain_webrtc(target: Target, obs: Observations) -> Explanation:
    """Say what each step of the call's setup means and give the overall verdict."""
    steps: list[Step] = []
    unreached = reach(target, obs, steps)
    if unreached is not None:
        return unreached
    offer = obs.offer
    if offer is None:
        return done(steps, "the probe stopped before the offer POST", ExitCode.HTTP)
    steps.append(_offer(offer))
    if not offer.answered:
        return done(steps, _refusal_verdict(offer), ExitCode.HTTP)
    cors = _cors(target, offer)
    if cors is not None:
        steps.append(cors)
        return done(steps, cors.text, ExitCode.CLIENT_REFUSES)
    call = obs.call or CallObservation()
    answer = _answer(offer.sdp or SdpSummary(), call.rejected)
    steps.append(answer)
    if answer.mark == "fail":
        return done(
            steps, f"a WebRTC client cannot use the answer: {answer.text}", ExitCode.CLIENT_REFUSES
        )
    steps.extend(_media(call, offer.sdp or SdpSummary()))
    steps.append(_hangup(call.hangup))
    session = call.session
    if session is None or session.session_created_ms is None or call.channel_ms is None:
        return done(steps, _no_session_verdict(call), ExitCode.NO_SESSION)
    verdict = (
        f"a call was established: session.created on {EVENTS_CHANNEL} "
        f"{ms(session.session_created_ms)} after {_SINCE} (answer {ms(offer.elapsed_ms)}"
    )
    if call.connected_ms is not None:
        verdict += f", ICE and DTLS {ms(call.connected_ms)}"
    verdict += f", channel open {ms(call.channel_ms)})"
    if steps[-1].mark == "fail":
        verdict += ", but the probe could not hang it up (it ends when the peer goes)"
    return done(steps, verdict, ExitCode.OK)


def _rid(offer: OfferObservation) -> str:
    return f" (X-Request-Id: {offer.request_id})" if offer.request_id else ""


def _offer(offer: OfferObservation) -> Step:
    name = "Offer"
    if offer.failure is not None:
        return Step(name=name, mark="fail", text=f"{offer.failure}{_rid(offer)}")
    status = offer.status or 0
    location = offer.headers.get("Location")
    if offer.answered:
        details: list[str] = []
        kind = offer.headers.get("Content-Type", "")
        if not kind.startswith("application/sdp"):
            details.append(f"Content-Type is {kind or 'missing'}, not application/sdp")
        if location:
            details.append(f"Location: {location} (the call's id, for sidebands and hangup)")
        else:
            details.append(
                "no Location header: an app server cannot attach a sideband (?call_id=) "
                "or hang the call up"
            )
        return Step(
            name=name,
            mark="ok",
            text=f"201 Created in {ms(offer.elapsed_ms)}{_rid(offer)}",
            details=tuple(details),
        )
    details = [f"HTTP {status}: {_status_meaning(status, offer)}"]
    if offer.error is not None:
        details.extend(error_details(offer.error))
    elif offer.body:
        details.append(f"body: {offer.body[:300]}")
    retry = offer.headers.get("Retry-After")
    if retry:
        details.append(f"retry after {retry} s (Retry-After)")
    if location:
        details.append(f"Location: {location}")
    text = f"refused with {status} {offer.reason} after {ms(offer.elapsed_ms)}{_rid(offer)}"
    return Step(name=name, mark="fail", text=text.replace("  ", " "), details=tuple(details))


def _status_meaning(status: int, offer: OfferObservation) -> str:
    if status == 404 and offer.error is None:
        return (
            f"Not Found: nothing is served at this path (rtrelay and OpenAI take offers at "
            f"{CALLS_PATH}; rtrelay's own 404s come with a JSON error)"
        )
    if 200 <= status < 300:
        return (
            "a call is answered with 201 Created and the SDP answer: this is not a calls endpoint"
        )
    if 300 <= status < 400:
        return "a redirect: post the offer to the URL in Location"
    return status_meaning(status)


def _refusal_verdict(offer: OfferObservation) -> str:
    if offer.failure is not None:
        return f"no HTTP answer to the offer: {offer.failure}"
    text = f"the server refused the offer with HTTP {offer.status}"
    error = offer.error
    if error is not None and error.code:
        text += f" ({error.code})"
        advice = error_advice(error.code)
        if advice:
            text += f": {advice}"
    return text


def _cors(target: Target, offer: OfferObservation) -> Step | None:
    """A page on ``--origin`` reads the answer only if the server allows that origin."""
    if target.origin is None:
        return None
    allowed = offer.headers.get("Access-Control-Allow-Origin")
    if allowed in (target.origin, "*"):
        return None
    return Step(
        name="CORS",
        mark="fail",
        text=f"a page on {target.origin} cannot read this answer: the server sent "
        f"Access-Control-Allow-Origin {allowed or '(none)'}",
        details=(
            "rtrelay allows the origins in server.allowed_origins (any when the list is "
            "empty): add the page's origin",
        ),
    )


def _answer(sdp: SdpSummary, rejected: str | None) -> Step:
    name = "SDP answer"
    missing = []
    if not sdp.audio:
        missing.append("no audio section (m=audio): no voice either way")
    if not sdp.data_channel:
        missing.append(f"no data channel section (m=application): no {EVENTS_CHANNEL} events")
    if not sdp.candidates:
        missing.append("no ICE candidate (a=candidate): nowhere to send media")
    if sdp.fingerprint is None:
        missing.append("no DTLS fingerprint (a=fingerprint): the connection cannot be secured")
    if missing:
        return Step(name=name, mark="fail", text=missing[0], details=tuple(missing[1:]))
    if rejected is not None:
        return Step(name=name, mark="fail", text=f"the WebRTC stack refused it ({rejected})")
    shown = ", ".join(sdp.candidates[:_SHOWN_CANDIDATES])
    if len(sdp.candidates) > _SHOWN_CANDIDATES:
        shown += ", …"
    algorithm, _, value = sdp.fingerprint.partition(" ") if sdp.fingerprint else ("", "", "")
    return Step(
        name=name,
        mark="ok",
        text=f"audio and data channel sections, {len(sdp.candidates)} ICE candidate(s) "
        f"({shown}), DTLS fingerprint {algorithm} {value[:14]}…",
    )


def _media(call: CallObservation, sdp: SdpSummary) -> list[Step]:
    """ICE, DTLS, the events channel and the session on it."""
    if call.ice_ms is None:
        where = ", ".join(sdp.candidates[:_SHOWN_CANDIDATES])
        if call.ice_state == "failed":
            text = "no candidate pair worked: this machine cannot reach the server's candidates"
        else:
            text = f"not connected within the timeout (state: {call.ice_state})"
        return [
            Step(
                name="ICE",
                mark="fail",
                text=text,
                details=(
                    f"the answer's candidates: {where}",
                    "media flows over UDP directly to them: a firewall or NAT in between "
                    "needs them public (or a TURN server)",
                ),
            )
        ]
    steps = [Step(name="ICE", mark="ok", text=f"connected {ms(call.ice_ms)} after {_SINCE}")]
    if call.connected_ms is None:
        steps.append(
            Step(
                name="DTLS",
                mark="fail",
                text=f"no DTLS connection (peer connection: {call.connection_state})",
                details=(
                    "the server's certificate must match the answer's fingerprint, and it "
                    "must answer the DTLS handshake on the ICE path",
                ),
            )
        )
        return steps
    steps.append(
        Step(
            name="DTLS",
            mark="ok",
            text=f"connected {ms(call.connected_ms)} after {_SINCE}; the certificate "
            "matches the answer's fingerprint",
        )
    )
    if call.channel_ms is None:
        steps.append(
            Step(
                name="Data channel",
                mark="fail",
                text=f"{EVENTS_CHANNEL} did not open (SCTP over DTLS)",
            )
        )
        return steps
    steps.append(
        Step(
            name="Data channel",
            mark="ok",
            text=f"{EVENTS_CHANNEL} open {ms(call.channel_ms)} after {_SINCE}",
        )
    )
    if call.session is not None:
        steps.extend(session_steps(call.session, since=_SINCE))
    return steps


def _hangup(hangup: HangupObservation | None) -> Step:
    if hangup is None:
        return Step(name="Hangup", mark="skip", text="not reached")
    closed = "; the probe then closed its peer"
    if hangup.failure is not None:
        return Step(name="Hangup", mark="fail", text=f"{hangup.failure}{closed}")
    status = hangup.status or 0
    if status < 400:
        return Step(name="Hangup", mark="ok", text=f"POST …/hangup answered {status}{closed}")
    details = tuple(error_details(hangup.error)) if hangup.error is not None else ()
    return Step(
        name="Hangup",
        mark="fail",
        text=f"POST …/hangup answered {status}{closed}",
        details=details,
    )


def _no_session_verdict(call: CallObservation) -> str:
    head = "the offer was answered but no session was established"
    if call.ice_ms is None:
        return f"{head}: ICE found no path for media to the server's candidates"
    if call.connected_ms is None:
        return f"{head}: the DTLS handshake did not complete"
    if call.channel_ms is None:
        return f"{head}: the {EVENTS_CHANNEL} data channel did not open"
    session = call.session
    if session is not None and session.errors:
        code = session.errors[0].code
        advice = error_advice(code)
        return f"{head}: {code}" + (f": {advice}" if advice else "")
    return f"{head}: no session.created within the timeout"
