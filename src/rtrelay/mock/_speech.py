"""Speech in and out for the duplex protocols (GPT-Live, translation); no I/O, no clock.

A Realtime reply is a whole response (``_response.py``). A Live or translation session
just speaks: every utterance server VAD hears is answered by an utterance of output
audio with its transcript, queued and streamed one audio chunk per step so that the
connection can pace it like a Realtime reply.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from rtrelay.mock import _errors as errors
from rtrelay.mock._audio import AudioFormat, bytes_per_ms, reply_audio
from rtrelay.mock._errors import ProviderError
from rtrelay.mock._response import Event, Step, reply_words

__all__ = ["MAX_QUEUED", "AudioEvent", "SpeakingSession", "SpeechOutput", "heard_words"]

# Replies waiting to be spoken, at most (the one playing included).
MAX_QUEUED: Final = 8
_USER_TEXT: Final = "Hello, can you hear me? I would like to ask you something about this."
_USER_WORDS: Final = tuple(_USER_TEXT.split())

# (audio chunk, start_ms, end_ms) -> event (None: nothing to send with the step);
# (text, start_ms, end_ms) -> event
AudioEvent = Callable[[bytes, int, int], Event | None]
TextEvent = Callable[[str, int, int], Event]


def heard_words(audio_ms: float) -> list[str]:
    """What the simulated transcriber hears in ``audio_ms`` of speech: about 2.5 words/s."""
    count = max(1, round(audio_ms / 400))
    return [_USER_WORDS[i % len(_USER_WORDS)] for i in range(count)]


@dataclass(slots=True)
class _Utterance:
    id: str
    chunks: list[bytes]
    words: tuple[str, ...]
    start_ms: float
    step: int = 0


class SpeechOutput:
    """Utterances waiting to be spoken, streamed one chunk (and its words) per step.

    Args:
        fmt: the output audio format.
        chunk_ms: audio per step.
        audio_event: makes an output audio delta event; ``None`` sends no audio events
            (WebRTC: the audio rides the media track, ``Step.audio`` carries it).
        transcript_event: makes an output transcript delta event.
    """

    __slots__ = ("_audio_event", "_chunk_ms", "_format", "_produced_ms", "_queue", "_transcript")

    def __init__(
        self,
        fmt: AudioFormat,
        chunk_ms: int,
        audio_event: AudioEvent | None,
        transcript_event: TextEvent,
    ) -> None:
        self._format: AudioFormat = fmt
        self._chunk_ms = chunk_ms
        self._audio_event = audio_event
        self._transcript = transcript_event
        self._queue: deque[_Utterance] = deque()
        self._produced_ms = 0.0

    @property
    def active_id(self) -> str | None:
        return self._queue[0].id if self._queue else None

    @property
    def produced_ms(self) -> float:
        """Output audio streamed so far."""
        return self._produced_ms

    @property
    def end_ms(self) -> float:
        """Where on the session timeline the queued speech ends (where new speech starts)."""
        if not self._queue:
            return 0.0
        last = self._queue[-1]
        size = bytes_per_ms(self._format)
        return last.start_ms + sum(len(c) for c in last.chunks) / size

    def say(self, utterance_id: str, duration_ms: int, start_ms: float) -> bool:
        """Queue a reply of ``duration_ms``, starting no earlier than ``start_ms``.

        Returns:
            False if ``MAX_QUEUED`` replies are already waiting (a caller talking faster
            than the replies play): this one is not said, and the backlog stays bounded.
        """
        if len(self._queue) >= MAX_QUEUED:
            return False
        audio = reply_audio(duration_ms, self._format)
        size = self._chunk_ms * bytes_per_ms(self._format)
        chunks = [audio[i : i + size] for i in range(0, len(audio), size)]
        start = max(start_ms, self.end_ms)
        self._queue.append(_Utterance(utterance_id, chunks, reply_words(duration_ms), start))
        return True

    def clear(self) -> None:
        """Forget everything not yet spoken."""
        self._queue.clear()

    def step(self) -> Step:
        """The next chunk of the first utterance; ``finished`` on its last chunk."""
        if not self._queue:
            return Step([], 0.0, True)
        utterance = self._queue[0]
        index = utterance.step
        utterance.step += 1
        steps = len(utterance.chunks)
        count = len(utterance.words)
        # Ceiling division: the transcript leads the audio, as a real model's does.
        first, last = -(-index * count // steps), -(-(index + 1) * count // steps)
        chunk = utterance.chunks[index]
        size = bytes_per_ms(self._format)
        offset = sum(len(c) for c in utterance.chunks[:index]) / size
        start = round(utterance.start_ms + offset)
        duration = len(chunk) / size
        end = round(utterance.start_ms + offset + duration)
        events: list[Event] = []
        if last > first:
            text = " ".join(utterance.words[first:last])
            events.append(self._transcript(text if first == 0 else " " + text, start, end))
        if self._audio_event is not None:
            audio_event = self._audio_event(chunk, start, end)
            if audio_event is not None:
                events.append(audio_event)
        self._produced_ms += duration
        finished = utterance.step >= steps
        if finished:
            self._queue.popleft()
        return Step(events, duration, finished, chunk)


class SpeakingSession:
    """What GPT-Live and translation sessions share: an id, spoken output, a clean end.

    Subclasses set ``_id``, ``_output`` and ``_finished`` and render errors in their
    protocol's shape (``_error``).
    """

    _id: str
    _output: SpeechOutput
    _finished: bool

    @property
    def session_id(self) -> str:
        return self._id

    @property
    def finished(self) -> bool:
        """``session.closed`` was sent: the connection closes with 1000."""
        return self._finished

    @property
    def response_active(self) -> bool:
        return self._output.active_id is not None

    @property
    def active_response_id(self) -> str | None:
        return self._output.active_id

    def stream_step(self) -> Step:
        return self._output.step()

    def receive_binary(self) -> list[Event]:
        """Handle a binary frame: these APIs speak JSON text only."""
        error = errors.invalid_event(
            "Binary frames are not supported: send each event as a JSON text frame."
        )
        return [self._error(error, None)]

    def error(self, error: ProviderError) -> Event:
        """An ``error`` event for a condition the connection layer detected."""
        return self._error(error, None)

    def _error(self, error: ProviderError, client_event_id: str | None) -> Event:
        raise NotImplementedError
