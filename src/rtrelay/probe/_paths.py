"""After a bare 404: which of the usual Realtime paths does this server answer on?

A 404 without an OpenAI-style error body means nothing is served at the path (rtrelay's
own 404, ``model_not_found``, has a body), and the most common cause is the URL: a typo,
a missing ``/v1``, the base URL of another API. The probe then asks the same server, with
a plain GET that carries no key and asks for no upgrade, at each usual path; a WebSocket
endpoint answers such a request with 426 Upgrade Required (rtrelay, with a JSON body) or
an error of its own rather than 404.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Final

import aiohttp
from yarl import URL

from rtrelay.probe._observations import PathCheck
from rtrelay.wire import AZURE_V1_PATH, OPENAI_PATH, REALTIME_PATH_SUFFIX

__all__ = ["CANDIDATE_PATHS", "observe_paths"]

CANDIDATE_PATHS: Final = (OPENAI_PATH, REALTIME_PATH_SUFFIX, AZURE_V1_PATH)
"""rtrelay's Realtime paths, and OpenAI's and Azure's v1 forms."""


async def observe_paths(
    url: str, *, ssl_context: ssl.SSLContext | None, timeout: float
) -> PathCheck:
    """Ask ``url``'s server at each candidate path but ``url``'s own; at most ``timeout`` s."""
    target = URL(url)
    http_scheme = "https" if target.scheme == "wss" else "http"
    tried: list[str] = []
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    try:
        async with aiohttp.ClientSession(timeout=client_timeout) as http, asyncio.timeout(timeout):
            for path in CANDIDATE_PATHS:
                if path == target.path:
                    continue
                tried.append(path)
                candidate = target.with_path(path).with_query(None)  # a query may hold a key
                async with http.get(
                    candidate.with_scheme(http_scheme),
                    ssl=ssl_context if ssl_context is not None else True,
                ) as resp:
                    if _endpoint_answer(resp.status, await resp.content.read(4096)):
                        return PathCheck(tried=tuple(tried), found=str(candidate))
    except (aiohttp.ClientError, OSError, TimeoutError):
        pass  # only a hint: the report stands without it
    return PathCheck(tried=tuple(tried))


def _endpoint_answer(status: int, body: bytes) -> bool:
    if status == 426:  # Upgrade Required: a WebSocket endpoint lives here
        return True
    if status == 404 or status < 400:
        return False
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and isinstance(parsed.get("error"), dict)
