"""The ledger's local journal: where records go while the store cannot take them.

A completed response is never lost (DESIGN.md "Usage and money"): when the
database is unreachable the ``LedgerWriter`` appends its records here, one JSON
line each, with one ``fsync`` per batch, and replays them into the store once it
answers again, or at the next start. Replays are safe to repeat: usage rows are
idempotent on (session, response id), refusals on their request id, a session
close on its status; a session opened twice is recognised and skipped.

One file per process. ``--workers N`` run N writers on one configured path, so
each takes the first of ``path``, ``path.1`` … ``path.63`` it can ``flock``;
a file nobody holds a lock on was left by a process that died, and whichever
process finds it replays it and deletes it. Files are created on the first
append, so a relay whose store never failed leaves nothing behind.

Lines the store refuses for good (after retries, with the store answering) are
moved to ``<path>.rejected`` for an operator, never silently dropped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, get_args

import orjson
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from rtrelay.ledger.prices import Usage
from rtrelay.ledger.records import ChannelAttempt, Record

__all__ = ["MAX_WRITERS", "Entry", "Journal", "Segment", "decode", "encode", "journal_path"]

MAX_WRITERS: Final = 64
"""Journal files one path may have at once (one per live process)."""
READ_BYTES: Final = 1 << 20
FORMAT: Final = 1

_KINDS: Final[dict[str, type[Any]]] = {cls.__name__: cls for cls in get_args(Record)}
"""Every record kind (``records.Record``), by the name its lines carry."""


def journal_path(store_url: str, setting: str) -> Path | None:
    """The journal file for ``[store] journal``: ``off``, ``auto`` or a path.

    ``auto`` puts it beside a SQLite store (``rtrelay.db.ledger-journal.jsonl``) and
    in the working directory for PostgreSQL (``rtrelay-ledger-journal.jsonl``).
    """
    if setting == "off":
        return None
    if setting != "auto":
        return Path(setting)
    with contextlib.suppress(ArgumentError):
        url = make_url(store_url)
        if url.get_backend_name() == "sqlite" and url.database:
            db = Path(url.database)
            return db.with_name(db.name + ".ledger-journal.jsonl")
    return Path("rtrelay-ledger-journal.jsonl")


# -- lines ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """A journaled record and how many replays put it back for later."""

    record: Record
    tries: int = 0


def encode(record: Record, tries: int = 0) -> bytes:
    """One journal line, newline included."""
    line = {"v": FORMAT, "kind": type(record).__name__, "tries": tries, "record": record}
    return orjson.dumps(line, default=_plain) + b"\n"


def _plain(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot journal {type(value).__name__}")


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _usage(value: Any) -> Usage:
    fields = dict(value)
    # Lines journaled before issue 14 call the seconds "transcription_seconds".
    fields["seconds"] = Decimal(fields.pop("seconds", fields.pop("transcription_seconds", 0)))
    return Usage(**fields)


def _attempts(value: Any) -> tuple[ChannelAttempt, ...] | None:
    return None if value is None else tuple(ChannelAttempt(**a) for a in value)


_FIELDS: Final[dict[str, Callable[[Any], Any]]] = {
    "at": _time,
    "started_at": _time,
    "ended_at": _time,
    "cost_usd": _decimal,
    "usage": _usage,
    "channels_tried": _attempts,
}
"""Fields whose JSON form is not their Python form, by name (the same in every record)."""


def decode(line: bytes) -> Entry:
    """The entry ``encode`` wrote.

    Raises:
        ValueError: not a journal line of a known format and kind.
    """
    try:
        data = orjson.loads(line)
        kind = _KINDS[data["kind"]]
        if data["v"] != FORMAT:
            raise ValueError(f"journal format {data['v']!r}")
        raw = data["record"]
        values = {
            f.name: _FIELDS.get(f.name, _same)(raw[f.name])
            for f in dataclasses.fields(kind)
            if f.name in raw
        }
        return Entry(kind(**values), int(data.get("tries", 0)))
    except (KeyError, TypeError, ArithmeticError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"not a journal line: {exc!r}") from exc


def _same(value: Any) -> Any:
    return value


# -- files ---------------------------------------------------------------------------


def _lock(path: Path, *, create: bool) -> int | None:
    """An fd on ``path`` holding its exclusive ``flock``, or ``None`` if someone else holds it."""
    flags = os.O_RDWR | os.O_APPEND | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # The holder may have replayed and unlinked the file between our open and lock.
        if os.fstat(fd).st_ino == os.stat(path).st_ino:
            return fd
    except (BlockingIOError, FileNotFoundError):
        pass
    os.close(fd)
    return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Segment:
    """One journal file being replayed: read a batch, write it, ``commit``, repeat.

    Args:
        journal: the owner (for the lock shared with appends to its own file).
        path: the file.
        fd: an fd holding the file's ``flock``.
        own: this process's file (emptied when caught up) or a dead one's (deleted).
    """

    def __init__(self, journal: Journal, path: Path, fd: int, *, own: bool) -> None:
        self.journal = journal
        self.path = path
        self.own = own
        self._fd = fd
        self.offset = journal.read_offset if own else 0

    def read(self, limit: int) -> tuple[list[Entry], list[bytes], int]:
        """Up to ``limit`` entries after ``offset``, lines that do not decode, and their end.

        A last line without its newline is a write a crash cut short: skipped.
        """
        with self.journal.lock:
            size = os.fstat(self._fd).st_size
        entries: list[Entry] = []
        bad: list[bytes] = []
        end = self.offset
        if size <= end:
            return entries, bad, end
        data = os.pread(self._fd, min(READ_BYTES, size - end), end)
        for line in _lines(data):
            if len(entries) >= limit:
                break
            end += len(line)
            try:
                entries.append(decode(line))
            except ValueError:
                bad.append(line)
        if not entries and not bad and end == self.offset and size - end <= READ_BYTES:
            end = size  # only a torn tail is left
        return entries, bad, end

    def commit(self, end: int) -> None:
        self.offset = end
        if self.own:
            self.journal.read_offset = end

    def finish(self) -> bool:
        """Done with a caught-up file: ``True`` once it is gone or empty."""
        if not self.own:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.release()
            return True
        return self.journal.truncate_if_read()

    def release(self) -> None:
        if not self.own:
            os.close(self._fd)


def _lines(data: bytes) -> Iterator[bytes]:
    start = 0
    while (stop := data.find(b"\n", start)) >= 0:
        yield data[start : stop + 1]
        start = stop + 1


class Journal:
    """This process's journal file, and the files dead processes left beside it.

    Thread-safe: the writer appends from a worker thread so its ``fsync`` never
    blocks the event loop.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self._fd: int | None = None
        self._own_path: Path | None = None
        self._size = 0
        self.read_offset = 0
        """Bytes of our own file already replayed."""

    @property
    def rejected_path(self) -> Path:
        return self.path.with_name(self.path.name + ".rejected")

    @property
    def backlog(self) -> bool:
        """Records of ours not replayed yet: new records must queue behind them."""
        return self._size > self.read_offset

    @property
    def pending_bytes(self) -> int:
        """Bytes of ours not replayed yet (files dead processes left are not counted)."""
        return self._size - self.read_offset

    def candidates(self) -> list[Path]:
        return [self.path] + [
            self.path.with_name(f"{self.path.name}.{n}") for n in range(1, MAX_WRITERS)
        ]

    def append(self, records: Sequence[Record], *, tries: int = 0) -> None:
        """Append and ``fsync``; blocking.

        Raises:
            OSError: the file cannot be written (the records are not journaled).
        """
        data = b"".join(encode(r, tries) for r in records)
        with self.lock:
            fd = self._own()
            _write_all(fd, data)
            os.fsync(fd)
            self._size += len(data)

    def _own(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for candidate in self.candidates():
                fd = _lock(candidate, create=True)
                if fd is not None:
                    self._fd, self._own_path = fd, candidate
                    # A dead process's records, if any, are now ours to replay first;
                    # end a line its crash cut short, or it would swallow our first.
                    size = os.fstat(fd).st_size
                    if size and os.pread(fd, 1, size - 1) != b"\n":
                        _write_all(fd, b"\n")
                    self._size = os.fstat(fd).st_size
                    self.read_offset = 0
                    return fd
            raise OSError(f"no free journal file beside {self.path} ({MAX_WRITERS} in use)")
        return self._fd

    def segments(self) -> list[Segment]:
        """Files to replay: those dead processes left (now locked by us), then our own."""
        found: list[Segment] = []
        for candidate in self.candidates():
            if candidate == self._own_path or not candidate.exists():
                continue
            fd = _lock(candidate, create=False)
            if fd is not None:
                found.append(Segment(self, candidate, fd, own=False))
        if self._fd is not None and self._own_path is not None and self.backlog:
            found.append(Segment(self, self._own_path, self._fd, own=True))
        return found

    def orphans(self) -> bool:
        """Whether a file other than ours holds records (cheap: no lock taken).

        It may be a live process's (its backlog, which it replays itself): trying
        to lock it is how the caller finds out.
        """
        for candidate in self.candidates():
            if candidate != self._own_path:
                with contextlib.suppress(FileNotFoundError):
                    if candidate.stat().st_size:
                        return True
        return False

    def truncate_if_read(self) -> bool:
        with self.lock:
            if self._fd is None:
                return True
            if os.fstat(self._fd).st_size != self.read_offset:
                return False  # appended to while we replayed: read on
            os.ftruncate(self._fd, 0)
            os.fsync(self._fd)
            self._size = self.read_offset = 0
            return True

    def reject(self, lines: Sequence[bytes]) -> None:
        """Keep lines the store refused for good in ``<path>.rejected`` (append, fsync)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.rejected_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            _write_all(fd, b"".join(lines))
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        """Release our file; delete it if nothing is left to replay."""
        with self.lock:
            if self._fd is None:
                return
            if self._own_path is not None and not self.backlog:
                with contextlib.suppress(FileNotFoundError):
                    self._own_path.unlink()
            os.close(self._fd)
            self._fd = self._own_path = None
            self._size = self.read_offset = 0
