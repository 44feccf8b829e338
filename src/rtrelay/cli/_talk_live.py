"""``rtrelay talk --live``: one spoken turn of a GPT-Live conversation from a WAV file.

GPT-Live (``/v1/live/sessions``, protocol.md §10, ``openai/types/live/*``) is full
duplex, so the turn is run as a microphone would run it: ``session.start``, then the
file's audio paced in real time (100 ms chunks) with a second of silence after it so
the server's VAD hears the turn end, then the reply listened to until it goes quiet,
then ``session.close`` and its ``session.closed``. The reply audio goes to a WAV file,
its transcript to stdout; what was heard, and the session's audio seconds (the unit
GPT-Live bills; ``session.usage.updated`` is cumulative, so the last figure is the
total, never a sum), to stderr. Plain aiohttp: ``rtrelay.client`` speaks the Realtime
protocol only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

import aiohttp
import orjson
from yarl import URL

from rtrelay.client import PCM16_RATE, write_wav
from rtrelay.probe._websocket import HandshakeRecorder
from rtrelay.wire import DEFAULT_LIVE_MODEL, LIVE_SESSIONS_PATH

__all__ = ["live_start", "live_url", "talk_live"]

CHUNK_MS: Final = 100
TRAILING_SILENCE_MS: Final = 1000
"""Silence sent after the file: enough for server VAD to end the turn (OpenAI's default
silence_duration_ms is 500)."""
QUIET_S: Final = 1.5
"""The reply is over once no output audio has come for this long."""
_BYTES_PER_MS: Final = PCM16_RATE * 2 // 1000
_LIVE_SUFFIX: Final = LIVE_SESSIONS_PATH.removeprefix("/v1")

Event = dict[str, Any]


def live_url(url: str) -> str:
    """The Live sessions URL for a base URL (``ws://host:port/v1``) or the URL itself."""
    parsed = URL(url)
    scheme = {"http": "ws", "https": "wss"}.get(parsed.scheme, parsed.scheme)
    if scheme not in ("ws", "wss") or not parsed.host:
        raise ValueError(f"not a ws:// or wss:// URL with a host: {url!r}")
    path = parsed.path.rstrip("/")
    if not path.endswith(_LIVE_SUFFIX):
        path += _LIVE_SUFFIX
    return str(parsed.with_scheme(scheme).with_path(path).with_query(None))


def live_start(*, model: str, voice: str | None, instructions: str | None) -> Event:
    """The ``session.start`` event: pcm16 at 24 kHz both ways, and only the fields given
    (the Live server rejects unknown ones)."""
    audio: dict[str, Any] = {"format": {"type": "audio/pcm", "rate": PCM16_RATE}}
    if voice is not None:
        audio["output"] = {"voice": voice}
    session: dict[str, Any] = {"model": model, "audio": audio}
    if instructions is not None:
        session["instructions"] = instructions
    return {"type": "session.start", "session": session}


@dataclass(slots=True)
class _Run:
    """What the server said, gathered by the reader while the turn runs."""

    on_audio: Callable[[Event], None]
    started: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    """``session.closed`` came, or the socket closed."""
    output: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by each output audio delta (the quiet timer clears it)."""
    audio: bytearray = field(default_factory=bytearray)
    reply: list[str] = field(default_factory=list)
    heard: list[str] = field(default_factory=list)
    seconds: float | None = None
    closed: Event | None = None
    errors: list[Mapping[str, Any]] = field(default_factory=list)
    close_code: int | None = None

    def take(self, event: Event) -> None:
        kind = event.get("type")
        if kind == "session.started":
            self.started.set()
        elif kind == "session.output_audio.delta":
            with contextlib.suppress(binascii.Error):
                self.audio += base64.b64decode(str(event.get("delta", "")))
            self.on_audio(event)
            self.output.set()
        elif kind == "session.output_transcript.delta":
            self.reply.append(str(event.get("delta", "")))
        elif kind == "session.input_transcript.delta":
            self.heard.append(str(event.get("delta", "")))
        elif kind in ("session.usage.updated", "session.closed"):
            usage = event.get("usage")
            if isinstance(usage, Mapping) and isinstance(usage.get("seconds"), int | float):
                self.seconds = float(usage["seconds"])  # cumulative: the latest is the total
            if kind == "session.closed":
                self.closed = event
                self.ended.set()
        elif kind == "error":
            error = event.get("error")
            self.errors.append(error if isinstance(error, Mapping) else {})


async def talk_live(
    args: argparse.Namespace,
    url: str,
    pcm: bytes,
    *,
    api_key: str | None,
    on_audio: Callable[[Event], None],
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    """Run the turn at ``url`` (``live_url``) as ``args`` says; 0 when the session closed
    cleanly after a reply, else 1."""
    model = args.model or DEFAULT_LIVE_MODEL
    run = _Run(on_audio)
    recorder = HandshakeRecorder(api_key)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with (
            asyncio.timeout(args.timeout),
            aiohttp.ClientSession(middlewares=(recorder,)) as http,
        ):
            try:
                ws = await http.ws_connect(url, headers=headers, max_msg_size=0, heartbeat=20)
            except aiohttp.WSServerHandshakeError:
                return _refused(recorder, stderr)
            answer = recorder.answer
            request_id = answer.request_id if answer is not None else None
            stderr.write(f"connected to {url} (request id {request_id or '-'})\n")
            async with ws:
                reader = asyncio.create_task(_read(ws, run, stderr))
                try:
                    await _converse(ws, run, model, pcm, args)
                finally:
                    if not ws.closed:
                        await ws.close()
                    await reader
    except TimeoutError:
        stderr.write(f"\nrtrelay talk: the Live turn did not finish within {args.timeout:g} s\n")
        return 1
    except (aiohttp.ClientError, OSError) as exc:
        stderr.write(f"rtrelay talk: cannot reach {url}: {exc}\n")
        return 1
    return _report(run, args.out, stdout, stderr)


async def _converse(
    ws: aiohttp.ClientWebSocketResponse, run: _Run, model: str, pcm: bytes, args: Any
) -> None:
    """session.start, the paced audio, the reply until quiet, session.close."""
    start = live_start(model=model, voice=args.voice, instructions=args.instructions)
    await ws.send_str(orjson.dumps(start).decode())
    if not await _first(run.started, run.ended):
        return
    await _speak(ws, pcm + bytes(TRAILING_SILENCE_MS * _BYTES_PER_MS), run)
    while not run.ended.is_set():
        run.output.clear()
        if not await _first(run.output, run.ended, timeout=QUIET_S) and run.audio:
            break  # the reply went quiet
    if not run.ended.is_set():
        await ws.send_str(orjson.dumps({"type": "session.close"}).decode())
        await run.ended.wait()


async def _speak(ws: aiohttp.ClientWebSocketResponse, pcm: bytes, run: _Run) -> None:
    """Send ``pcm`` in real time, as a microphone would."""
    size = CHUNK_MS * _BYTES_PER_MS
    began = time.monotonic()
    for index, offset in enumerate(range(0, len(pcm), size)):
        if run.ended.is_set():
            return
        delay = began + index * CHUNK_MS / 1000 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        audio = base64.b64encode(pcm[offset : offset + size]).decode()
        event = {"type": "session.input_audio.append", "audio": audio}
        await ws.send_str(orjson.dumps(event).decode())


async def _first(wanted: asyncio.Event, ended: asyncio.Event, timeout: float | None = None) -> bool:
    """Wait for ``wanted`` (``True``), ``ended`` or ``timeout`` (``False``)."""
    waits = [asyncio.ensure_future(wanted.wait()), asyncio.ensure_future(ended.wait())]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
    return wanted.is_set()


async def _read(ws: aiohttp.ClientWebSocketResponse, run: _Run, stderr: TextIO) -> None:
    try:
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                with contextlib.suppress(orjson.JSONDecodeError):
                    event = orjson.loads(message.data)
                    if isinstance(event, dict):
                        run.take(event)
                        if event.get("type") == "error":
                            _print_error(run.errors[-1], stderr)
    finally:
        run.close_code = ws.close_code
        run.ended.set()


def _print_error(error: Mapping[str, Any], stderr: TextIO) -> None:
    code = error.get("code") or error.get("type")
    stderr.write(f"\nserver error: {code}: {error.get('message')}\n")


def _refused(recorder: HandshakeRecorder, stderr: TextIO) -> int:
    answer = recorder.answer
    if answer is None:
        stderr.write("rtrelay talk: the upgrade was refused\n")
        return 1
    error = answer.error
    what = f" ({error.code}: {error.message})" if error is not None and error.code else ""
    stderr.write(f"rtrelay talk: the upgrade was refused with HTTP {answer.status}{what}\n")
    return 1


def _report(run: _Run, out: str | None, stdout: TextIO, stderr: TextIO) -> int:
    if run.audio:
        stderr.write("\n")
    if run.heard:
        stderr.write(f"heard: {''.join(run.heard).strip()}\n")
    stdout.write("".join(run.reply).strip() + "\n")
    stdout.flush()
    if out is not None and run.audio:
        write_wav(out, bytes(run.audio), PCM16_RATE)
        stderr.write(f"wrote {len(run.audio) / _BYTES_PER_MS / 1000:.2f} s of audio to {out}\n")
    if run.seconds is not None:
        stderr.write(f"usage: {run.seconds:g} s of audio (GPT-Live bills by the second)\n")
    if not run.started.is_set():
        stderr.write(f"rtrelay talk: the session did not start (close code {run.close_code})\n")
        return 1
    if run.closed is None:
        stderr.write(f"rtrelay talk: the session ended without session.closed ({run.close_code})\n")
        return 1
    if not run.audio:
        stderr.write("rtrelay talk: no spoken reply came\n")
        return 1
    return 0
