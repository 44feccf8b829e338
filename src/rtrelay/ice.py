"""Keep aiortc's ICE on loopback: 127.0.0.1 host candidates only, nothing else contacted.

Shared by every aiortc peer rtrelay runs: the simulated provider's, and the caller side
(``rtrelay.rtc``: the probe, the bench, the tests).

aioice gathers host candidates from every interface *except* 127.0.0.1 (``aioice.ice.
get_host_addresses``), so two peers on one machine's loopback never pair up, and every
other address it offers would have its connectivity checks sent off the loopback
(protocol.md §10, "WebRTC on loopback"). Within ``loopback_candidates()`` the gathering
offers 127.0.0.1 alone. aioice reads the function from its module at each gathering, and
aiortc gathers inside ``setLocalDescription`` (tasks it starts there copy the caller's
context), so a context variable scopes the change to the peers created under it: any
other peer in the process keeps aioice's behaviour.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
from collections.abc import Callable, Iterator
from typing import Final

__all__ = ["LOOPBACK", "keep_loopback_candidates", "loopback_candidates"]

LOOPBACK: Final = "127.0.0.1"

_ADDRESSES: Final = contextvars.ContextVar[tuple[str, ...] | None](
    "rtrelay_ice_addresses", default=None
)
_installed: list[Callable[[bool, bool], list[str]]] = []


def _install() -> None:
    """Wrap aioice's host-address discovery once per process (aioice imported lazily)."""
    if _installed:
        return
    import aioice.ice

    original = aioice.ice.get_host_addresses

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        chosen = _ADDRESSES.get()
        return original(use_ipv4, use_ipv6) if chosen is None else list(chosen)

    aioice.ice.get_host_addresses = host_addresses
    _installed.append(original)


@contextlib.contextmanager
def loopback_candidates() -> Iterator[None]:
    """Within this block, aiortc peers gather the 127.0.0.1 host candidate only.

    Wrap ``setLocalDescription`` (where aiortc gathers) of every peer that must stay on
    this machine: the simulated provider's, and a test's or probe's client talking to it.
    """
    _install()
    token = _ADDRESSES.set((LOOPBACK,))
    try:
        yield
    finally:
        _ADDRESSES.reset(token)


def keep_loopback_candidates(sdp: str) -> str:
    """``sdp`` without candidates on addresses other than loopback.

    A browser may offer LAN addresses or mDNS names (``….local``, resolved by multicast);
    the simulated provider must never send a connectivity check there. ICE still
    succeeds through the peer-reflexive candidate the client's own checks reveal, as it
    does for an offer posted before gathering. ``a=end-of-candidates`` goes too when a
    candidate was dropped: the peer-reflexive one is still to come.
    """
    kept: list[str] = []
    dropped = False
    for line in sdp.splitlines(keepends=True):
        if line.startswith("a=candidate:"):
            fields = line.split()
            if len(fields) < 5 or not _is_loopback(fields[4]):
                dropped = True
                continue
        kept.append(line)
    if dropped:
        kept = [line for line in kept if not line.startswith("a=end-of-candidates")]
    return "".join(kept)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # a hostname (mDNS) or garbage
