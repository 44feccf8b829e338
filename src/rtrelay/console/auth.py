"""Console sign-in: the admin token checked once, then a signed, expiring session cookie.

The cookie never holds the token. It holds a random session id, its expiry and an
HMAC over both, keyed by a key *derived from* the admin token: every worker of a
``--workers N`` relay verifies it without shared state, and changing the token signs
everyone out. CSRF tokens are HMACs of the session id (the synchronizer-token pattern
without a server-side table); before sign-in, the login form's token is bound to a
random nonce in its own short-lived cookie, so a cross-site page cannot sign a
browser in with the attacker's token either.

Pure apart from the injected clock and ``secrets``: no aiohttp here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "SESSION_LIFETIME",
    "ConsoleAuth",
    "Signin",
    "WrongTokenThrottle",
]

SESSION_COOKIE: Final = "rtrelay_console"
LOGIN_COOKIE: Final = "rtrelay_console_login"
SESSION_LIFETIME: Final = 8 * 3600
"""Seconds a sign-in lasts, whatever happens: an operator's working day."""
LOGIN_LIFETIME: Final = 600
"""Seconds the login form's CSRF nonce stays valid."""
_KEY_LABEL: Final = b"rtrelay console session v1"
_MAX_SIGNED_OUT: Final = 10_000


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class Signin:
    """A verified console session: its id and when it expires (Unix seconds)."""

    session_id: str
    expires: int


class ConsoleAuth:
    """Checks the admin token, issues and verifies session cookies and CSRF tokens.

    Args:
        token: the admin token (``[admin] token_env``); only its hash and a key
            derived from it are kept.
        clock: Unix time (tests pass their own).
    """

    def __init__(self, token: str, *, clock: Callable[[], float] = time.time) -> None:
        self._digest = hashlib.sha256(token.encode()).digest()
        self._key = hmac.new(token.encode(), _KEY_LABEL, hashlib.sha256).digest()
        self._clock = clock
        self._signed_out: OrderedDict[str, int] = OrderedDict()

    def token_matches(self, presented: str) -> bool:
        """Whether ``presented`` is the admin token, in constant time.

        Both sides are hashed first, so neither the token's content nor its length
        shows in the timing (the admin API's rule, ``admin.auth``).
        """
        digest = hashlib.sha256(presented.strip().encode()).digest()
        return hmac.compare_digest(digest, self._digest)

    def _mac(self, purpose: str, value: str) -> str:
        message = f"{purpose}:{value}".encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    # -- sessions ---------------------------------------------------------------------------
    def issue(self) -> str:
        """A new session cookie value: ``<id>.<expiry>.<mac>``."""
        session_id = secrets.token_urlsafe(18)
        expires = int(self._clock()) + SESSION_LIFETIME
        body = f"{session_id}.{expires}"
        return f"{body}.{self._mac('session', body)}"

    def verify(self, cookie: str | None) -> Signin | None:
        """The session a cookie proves, or ``None`` (absent, forged, expired, signed out)."""
        if not cookie or len(cookie) > 200:
            return None
        session_id, _, rest = cookie.partition(".")
        expiry, _, mac = rest.partition(".")
        if not (session_id and expiry.isdigit() and mac):
            return None
        if not hmac.compare_digest(mac, self._mac("session", f"{session_id}.{expiry}")):
            return None
        expires = int(expiry)
        if expires <= self._clock() or session_id in self._signed_out:
            return None
        return Signin(session_id, expires)

    def sign_out(self, signin: Signin) -> None:
        """Refuse this session's cookie from now on (in this process; it also expires)."""
        now = self._clock()
        while self._signed_out and next(iter(self._signed_out.values())) <= now:
            self._signed_out.popitem(last=False)
        if len(self._signed_out) >= _MAX_SIGNED_OUT:
            self._signed_out.popitem(last=False)
        self._signed_out[signin.session_id] = signin.expires

    # -- CSRF -------------------------------------------------------------------------------
    def csrf_token(self, session_id: str) -> str:
        """The CSRF token every form and htmx request of this session carries."""
        return self._mac("csrf", session_id)

    def csrf_ok(self, session_id: str, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(str(presented), self.csrf_token(session_id))

    def login_nonce(self) -> str:
        """The login form's cookie value: a random nonce and its expiry."""
        return f"{secrets.token_urlsafe(18)}.{int(self._clock()) + LOGIN_LIFETIME}"

    def login_csrf(self, nonce: str) -> str:
        return self._mac("login", nonce)

    def login_csrf_ok(self, nonce: str | None, presented: str | None) -> bool:
        """Whether the login form was posted from the page that set ``nonce``, in time."""
        if not nonce or not presented or len(nonce) > 100:
            return False
        expiry = nonce.rpartition(".")[2]
        if not expiry.isdigit() or int(expiry) <= self._clock():
            return False
        return hmac.compare_digest(presented, self.login_csrf(nonce))


@dataclass(slots=True)
class WrongTokenThrottle:
    """At most ``limit`` wrong admin tokens per peer address per ``window`` seconds.

    The token is long and random, so guessing it is hopeless anyway; this keeps a
    script from turning the console into a load test. Bounded: past ``max_peers``
    addresses the least recently seen is forgotten.
    """

    limit: int = 10
    window: float = 60.0
    max_peers: int = 1024
    clock: Callable[[], float] = time.monotonic
    _failures: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)

    def blocked(self, peer: str) -> bool:
        times = self._failures.get(peer)
        if times is None:
            return False
        now = self.clock()
        while times and times[0] <= now - self.window:
            times.popleft()
        return len(times) >= self.limit

    def failed(self, peer: str) -> None:
        times = self._failures.pop(peer, None) or deque(maxlen=self.limit)
        times.append(self.clock())
        self._failures[peer] = times
        if len(self._failures) > self.max_peers:
            self._failures.popitem(last=False)
