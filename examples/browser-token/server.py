"""The token flow for browsers, as small as it gets: your server holds the rtrelay key and
mints a short-lived ``ek_`` token per page; the page connects to rtrelay with the token.

    RTRELAY_KEY=rk_... python3 examples/browser-token/server.py
    # then open http://127.0.0.1:8000

Only the standard library: copy it into any backend. Environment:
    RTRELAY_KEY    the rtrelay key (rk_...): stays on this server, never sent to a page
    RTRELAY_URL    the relay (default http://127.0.0.1:8080; https://... for a TLS relay)
    RTRELAY_MODEL  the model each token is bound to (default gpt-realtime)
    PORT           where this server listens (default 8000)
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RELAY = os.environ.get("RTRELAY_URL", "http://127.0.0.1:8080").rstrip("/")
MODEL = os.environ.get("RTRELAY_MODEL", "gpt-realtime")
PAGE = Path(__file__).with_name("index.html").read_bytes()


def mint_token(key: str) -> dict[str, object]:
    """POST /v1/realtime/client_secrets: the body names the model the token is bound to."""
    body = {
        "expires_after": {"anchor": "created_at", "seconds": 600},
        "session": {"type": "realtime", "model": MODEL},
    }
    request = urllib.request.Request(
        f"{RELAY}/v1/realtime/client_secrets",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        minted = json.load(response)
    return {
        "token": minted["value"],
        "expires_at": minted["expires_at"],
        "url": f"ws{RELAY[4:]}/v1/realtime?model={MODEL}",  # http→ws, https→wss
    }


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path not in ("/", "/index.html"):
            self.send_error(404)
            return
        self._send(200, PAGE, "text/html; charset=utf-8")

    def do_POST(self) -> None:
        if self.path != "/token":
            self.send_error(404)
            return
        # A real app checks here that its own user is signed in before minting.
        try:
            answer = mint_token(os.environ["RTRELAY_KEY"])
            self._send(200, json.dumps(answer).encode(), "application/json")
        except urllib.error.HTTPError as exc:  # rtrelay's refusal: pass its JSON on
            self._send(exc.code, exc.read(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    if not os.environ.get("RTRELAY_KEY"):
        sys.exit("set RTRELAY_KEY to an rtrelay key (rk_...): `rtrelay keys create --name web`")
    port = int(os.environ.get("PORT", "8000"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"token example: http://127.0.0.1:{server.server_port} (relay {RELAY})", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
