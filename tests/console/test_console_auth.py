"""Console sign-in without sockets: the cookie, its expiry, CSRF tokens, the throttle."""

from __future__ import annotations

import pytest

from rtrelay.console.auth import SESSION_LIFETIME, ConsoleAuth, WrongTokenThrottle

TOKEN = "admin-token-0123456789"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(clock: Clock) -> ConsoleAuth:
    return ConsoleAuth(TOKEN, clock=clock)


def test_only_the_admin_token_matches(auth: ConsoleAuth) -> None:
    assert auth.token_matches(TOKEN)
    assert auth.token_matches(f"  {TOKEN}\n")  # pasted with a newline
    assert not auth.token_matches(TOKEN[:-1])
    assert not auth.token_matches("")


def test_the_cookie_never_holds_the_token(auth: ConsoleAuth) -> None:
    cookie = auth.issue()
    assert TOKEN not in cookie
    assert auth.verify(cookie) is not None


def test_a_cookie_expires_after_the_session_lifetime(auth: ConsoleAuth, clock: Clock) -> None:
    cookie = auth.issue()
    clock.now += SESSION_LIFETIME - 1
    assert auth.verify(cookie) is not None
    clock.now += 1
    assert auth.verify(cookie) is None


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c[:-1] + ("A" if c[-1] != "A" else "B"),  # another MAC
        lambda c: "x" + c,  # another session id
        lambda c: c.replace(".", ".9", 1),  # a later expiry
        lambda c: "",
        lambda c: "a.b",
        lambda c: c + "." * 300,
    ],
)
def test_a_tampered_cookie_is_refused(auth: ConsoleAuth, tamper) -> None:  # type: ignore[no-untyped-def]
    assert auth.verify(tamper(auth.issue())) is None


def test_a_cookie_signed_with_another_token_is_refused(clock: Clock) -> None:
    other = ConsoleAuth("another-token", clock=clock).issue()
    assert ConsoleAuth(TOKEN, clock=clock).verify(other) is None


def test_every_worker_verifies_a_cookie_any_worker_issued(clock: Clock) -> None:
    cookie = ConsoleAuth(TOKEN, clock=clock).issue()
    assert ConsoleAuth(TOKEN, clock=clock).verify(cookie) is not None


def test_signing_out_refuses_the_cookie(auth: ConsoleAuth) -> None:
    cookie = auth.issue()
    signin = auth.verify(cookie)
    assert signin is not None
    auth.sign_out(signin)
    assert auth.verify(cookie) is None
    assert auth.verify(auth.issue()) is not None  # a new sign-in works


def test_csrf_token_is_bound_to_the_session(auth: ConsoleAuth) -> None:
    a, b = auth.verify(auth.issue()), auth.verify(auth.issue())
    assert a is not None and b is not None
    token = auth.csrf_token(a.session_id)
    assert auth.csrf_ok(a.session_id, token)
    assert not auth.csrf_ok(b.session_id, token)
    assert not auth.csrf_ok(a.session_id, None)
    assert not auth.csrf_ok(a.session_id, "")


def test_the_login_form_token_is_bound_to_its_nonce_and_expires(
    auth: ConsoleAuth, clock: Clock
) -> None:
    nonce = auth.login_nonce()
    token = auth.login_csrf(nonce)
    assert auth.login_csrf_ok(nonce, token)
    assert not auth.login_csrf_ok(auth.login_nonce(), token)
    assert not auth.login_csrf_ok(None, token)
    assert not auth.login_csrf_ok(nonce, None)
    clock.now += 601
    assert not auth.login_csrf_ok(nonce, token)


def test_the_throttle_blocks_a_peer_after_the_limit_for_the_window(clock: Clock) -> None:
    throttle = WrongTokenThrottle(limit=3, window=60, clock=clock)
    for _ in range(3):
        assert not throttle.blocked("10.0.0.1")
        throttle.failed("10.0.0.1")
    assert throttle.blocked("10.0.0.1")
    assert not throttle.blocked("10.0.0.2")
    clock.now += 60
    assert not throttle.blocked("10.0.0.1")


def test_the_throttle_forgets_the_oldest_peer_past_its_bound(clock: Clock) -> None:
    throttle = WrongTokenThrottle(limit=1, max_peers=2, clock=clock)
    for peer in ("a", "b", "c"):
        throttle.failed(peer)
    assert not throttle.blocked("a")
    assert throttle.blocked("b") and throttle.blocked("c")
