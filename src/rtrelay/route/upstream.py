"""How to reach a channel's upstream: its URL and headers, per channel kind.

Provider URL forms are protocol.md §1; the provider key is read from the
environment variable the channel names, at dial time, and goes only into the
upstream request's headers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from rtrelay.config import Channel

__all__ = ["UpstreamRequest", "build_request", "provider_secret"]


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    url: str
    headers: dict[str, str]

    def __repr__(self) -> str:  # headers carry the provider key
        return f"UpstreamRequest(url={self.url!r})"


def provider_secret(channel: Channel, environ: Mapping[str, str] | None = None) -> str | None:
    if channel.api_key_env is None:
        return None
    return (environ if environ is not None else os.environ).get(channel.api_key_env) or None


def build_request(
    channel: Channel,
    public_model: str,
    *,
    beta: bool,
    request_id: str,
    environ: Mapping[str, str] | None = None,
) -> UpstreamRequest:
    upstream_model = channel.upstream_model(public_model)
    base = channel.base_url.rstrip("/")
    secret = provider_secret(channel, environ)
    headers: dict[str, str] = {"X-Request-Id": request_id}
    if beta:
        headers["OpenAI-Beta"] = "realtime=v1"
    if channel.kind == "azure":
        if channel.api_version:
            query = urlencode({"api-version": channel.api_version, "deployment": upstream_model})
            url = f"{base}/openai/realtime?{query}"
        else:
            url = f"{base}/openai/v1/realtime?{urlencode({'model': upstream_model})}"
        if secret is not None:
            if channel.auth == "api-key":
                headers["api-key"] = secret
            else:
                headers["Authorization"] = f"Bearer {secret}"
    elif channel.kind == "openai-compatible":
        assert channel.url_template is not None  # validated by Channel
        url = channel.url_template.format(model=quote(upstream_model, safe=""))
        if secret is not None:
            if channel.auth_header.lower() == "authorization":
                headers["Authorization"] = f"Bearer {secret}"
            else:
                headers[channel.auth_header] = secret
    else:  # openai, mock
        url = f"{base}/realtime?{urlencode({'model': upstream_model})}"
        if secret is not None:
            headers["Authorization"] = f"Bearer {secret}"
    return UpstreamRequest(url=url, headers=headers)
