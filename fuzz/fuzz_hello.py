"""atheris target: reading an upgrade request never fails and never echoes a secret.

python fuzz/fuzz_hello.py -atheris_runs=1000000
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from multidict import CIMultiDict

    from rtrelay.edge.handshake import parse_hello

_NAMES = ("Authorization", "api-key", "Sec-WebSocket-Protocol", "Origin", "OpenAI-Beta")


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    headers: CIMultiDict[str] = CIMultiDict()
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        headers.add(_NAMES[fdp.ConsumeIntInRange(0, len(_NAMES) - 1)], fdp.ConsumeUnicode(40))
    query = {"model": fdp.ConsumeUnicode(20)} if fdp.ConsumeBool() else {}
    hello = parse_hello(headers, query, request_id="req_fuzz")
    assert hello.echo_protocol in (None, "realtime")
    if hello.credential is not None:
        assert hello.credential == hello.credential.strip()
        assert hello.credential not in ("", "null", "undefined")
    for offered in hello.offered_protocols:
        assert offered
        assert offered == offered.strip()
        assert "," not in offered


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
