"""``rtrelay talk``: one spoken (or typed) turn against a realtime endpoint, from a terminal.

Sends a WAV file or a line of text to rtrelay or a provider, writes the reply audio
to a WAV file and the reply transcript to stdout, with a progress line on stderr
while the audio streams. Built on ``rtrelay.client`` only, so it doubles as a
check that a deployment works for a real client.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from rtrelay.cli._talk_live import live_url, talk_live
from rtrelay.client import (
    PCM16_RATE,
    APIError,
    Event,
    RealtimeClient,
    RealtimeConnection,
    RealtimeError,
    canonical_type,
    read_wav,
    resample_pcm16,
    write_wav,
)
from rtrelay.wire import DEFAULT_LIVE_MODEL, DEFAULT_MODEL

__all__ = ["register", "run", "session_update", "talk"]

KEY_ENVIRONMENT = ("RTRELAY_API_KEY", "OPENAI_API_KEY")


def register(subparsers: Any) -> None:
    """Add the ``talk`` subcommand to the ``rtrelay`` parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "talk",
        help="send a WAV file or text to a realtime endpoint and save the spoken reply",
        description="Send a WAV file (16-bit PCM; resampled to 24 kHz) or a line of text to "
        "a realtime endpoint (rtrelay or a provider); write the reply audio as a 24 kHz WAV "
        "file and the reply transcript to stdout. The key defaults to $RTRELAY_API_KEY, "
        "then $OPENAI_API_KEY. With --live, a GPT-Live conversation (/v1/live/sessions): "
        "session.start, the WAV paced in real time, the reply until it goes quiet, then "
        "session.close; what was heard and the session's billed audio seconds go to stderr.",
    )
    parser.add_argument("url", metavar="URL", help="base URL (ws://host:port/v1) or full URL")
    parser.add_argument("--key", help="API key (default: $RTRELAY_API_KEY or $OPENAI_API_KEY)")
    parser.add_argument(
        "--model", help=f"model (default {DEFAULT_MODEL}; with --live, {DEFAULT_LIVE_MODEL})"
    )
    parser.add_argument(
        "--live", action="store_true", help="talk to GPT-Live (/v1/live/sessions) from --wav"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--wav", metavar="IN.wav", help="speech to send (16-bit PCM WAV)")
    source.add_argument("--text", help="text to send instead of audio")
    parser.add_argument("--out", metavar="REPLY.wav", help="write the reply audio here")
    parser.add_argument("--voice", help="voice of the reply")
    parser.add_argument("--instructions", help="session instructions")
    parser.add_argument(
        "--subprotocol-auth",
        action="store_true",
        help="send the key as a subprotocol, as browsers must (default: Authorization header)",
    )
    parser.add_argument("--beta", action="store_true", help="use the beta API shape")
    parser.add_argument("--azure", action="store_true", help="send the key as an api-key header")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds for the whole turn (default 120)"
    )
    parser.add_argument(
        "--retries", type=int, default=2, help="connection retries on retryable errors (default 2)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``rtrelay talk``; returns the exit code."""
    key = args.key or next((os.environ[n] for n in KEY_ENVIRONMENT if os.environ.get(n)), None)
    return asyncio.run(talk(args, api_key=key, stdout=sys.stdout, stderr=sys.stderr))


def session_update(
    *, beta: bool, voice: str | None, instructions: str | None, manual_turns: bool
) -> dict[str, Any]:
    """The ``session`` of the one ``session.update`` talk sends (empty: send none).

    For a file, server VAD is turned off so that the file is one turn that talk
    commits itself, instead of VAD committing (and answering) on its own.
    """
    session: dict[str, Any] = {}
    if instructions is not None:
        session["instructions"] = instructions
    if beta:
        if voice is not None:
            session["voice"] = voice
        if manual_turns:
            session["turn_detection"] = None
        return session
    audio: dict[str, Any] = {}
    if voice is not None:
        audio["output"] = {"voice": voice}
    if manual_turns:
        audio["input"] = {"turn_detection": None}
    if audio:
        session["audio"] = audio
    return session


class Progress:
    """The ``receiving audio: 1.20 s`` line on stderr, redrawn in place."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._bytes = 0
        self._shown = False

    def audio(self, event: Event) -> None:
        self._bytes += len(str(event.get("delta", ""))) * 3 // 4
        seconds = self._bytes / 2 / PCM16_RATE
        self._stream.write(f"\rreceiving audio: {seconds:6.2f} s")
        self._stream.flush()
        self._shown = True

    def end(self) -> None:
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()
            self._shown = False


async def talk(
    args: argparse.Namespace,
    *,
    api_key: str | None,
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    """Run one turn as ``args`` says; 0 on a completed response, 1 on failure, 2 on bad input."""
    if args.live:
        return await _live(args, api_key=api_key, stdout=stdout, stderr=stderr)
    try:
        pcm = _load_audio(args.wav, stderr) if args.wav else None
        conn = RealtimeConnection(
            args.url,
            api_key=api_key,
            model=args.model or DEFAULT_MODEL,
            auth="subprotocol" if args.subprotocol_auth else "header",
            beta=args.beta,
            azure=args.azure,
            max_retries=args.retries,
        )
    except (ValueError, OSError) as exc:
        stderr.write(f"rtrelay talk: {exc}\n")
        return 2
    client = RealtimeClient(conn)
    progress = Progress(stderr)
    client.on("response.output_audio.delta", progress.audio)
    client.on("error", lambda event: _print_error_event(event, stderr))
    created = client.wait_for("session.created")
    try:
        async with asyncio.timeout(args.timeout):
            async with client:
                await created
                stderr.write(f"connected to {conn.url} (request id {conn.request_id or '-'})\n")
                update = session_update(
                    beta=args.beta,
                    voice=args.voice,
                    instructions=args.instructions,
                    manual_turns=pcm is not None,
                )
                if update:
                    updated = _first_of(client, ("session.updated", "error"))
                    await client.update_session(update)
                    await updated
                done = client.wait_for("response.done")
                if pcm is not None:
                    await client.append_audio(pcm)
                    await client.commit_audio()
                    await client.create_response()
                else:
                    await client.send_text(args.text)
                finished = await done
    except TimeoutError:
        progress.end()
        stderr.write(f"rtrelay talk: no complete reply within {args.timeout:g} s\n")
        return 1
    except RealtimeError as exc:
        progress.end()
        fault = f" ({exc.fault}'s fault)" if isinstance(exc, APIError) else ""
        stderr.write(f"rtrelay talk: {exc}{fault}\n")
        return 1
    progress.end()
    return _report(client, finished, args.out, stdout, stderr)


async def _live(
    args: argparse.Namespace, *, api_key: str | None, stdout: TextIO, stderr: TextIO
) -> int:
    """``--live``: one GPT-Live turn from ``--wav`` (``_talk_live``)."""
    if args.wav is None or args.subprotocol_auth or args.beta or args.azure:
        stderr.write(
            "rtrelay talk: --live speaks a WAV file (--wav) with the key in the "
            "Authorization header: drop --text, --subprotocol-auth, --beta and --azure\n"
        )
        return 2
    try:
        pcm = _load_audio(args.wav, stderr)
        url = live_url(args.url)
    except (ValueError, OSError) as exc:
        stderr.write(f"rtrelay talk: {exc}\n")
        return 2
    progress = Progress(stderr)
    return await talk_live(
        args, url, pcm, api_key=api_key, on_audio=progress.audio, stdout=stdout, stderr=stderr
    )


def _load_audio(path: str, stderr: TextIO) -> bytes:
    audio = read_wav(path)
    if audio.rate != PCM16_RATE:
        stderr.write(f"resampling {audio.rate} Hz to {PCM16_RATE} Hz\n")
    return resample_pcm16(audio.samples, audio.rate)


def _first_of(client: RealtimeClient, types: tuple[str, ...]) -> asyncio.Future[Event]:
    wanted = {canonical_type(t) for t in types}
    return client.wait_for("*", lambda event: canonical_type(event["type"]) in wanted)


def _print_error_event(event: Event, stderr: TextIO) -> None:
    error = event.get("error")
    if isinstance(error, Mapping):
        stderr.write(
            f"server error: {error.get('code') or error.get('type')}: {error.get('message')}\n"
        )


def _report(
    client: RealtimeClient, done: Event, out: str | None, stdout: TextIO, stderr: TextIO
) -> int:
    response = done.get("response") or {}
    items = client.conversation.items_of_response(str(response.get("id")))
    transcript = " ".join(
        (item.transcript or item.text).strip() for item in items if item.transcript or item.text
    )
    audio = b"".join(bytes(item.audio) for item in items)
    stdout.write(transcript + "\n")
    stdout.flush()
    if out is not None:
        if audio:
            write_wav(out, audio, PCM16_RATE)
            stderr.write(f"wrote {len(audio) / 2 / PCM16_RATE:.2f} s of audio to {out}\n")
        else:
            stderr.write("the reply had no audio; nothing written\n")
    status = response.get("status")
    if status != "completed":
        details = response.get("status_details")
        stderr.write(f"rtrelay talk: the response ended {status}: {details}\n")
        return 1
    return 0
