"""How to reach a channel's upstream: its URL and headers, per channel kind.

Provider URL forms are protocol.md §1. The provider key is read once, at start-up
(``config.channel_credentials``), and goes only into the upstream request's headers;
an empty one is never sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from rtrelay.config import Channel
from rtrelay.wire import (
    AZURE_PREVIEW_PATH,
    AZURE_V1_PATH,
    BETA_HEADER,
    BETA_HEADER_VALUE,
    REALTIME_PATH_SUFFIX,
)

__all__ = ["UpstreamRequest", "build_request"]


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    url: str
    headers: dict[str, str]

    def __repr__(self) -> str:  # headers carry the provider key
        return f"UpstreamRequest(url={self.url!r})"


def build_request(
    channel: Channel,
    public_model: str,
    *,
    beta: bool,
    request_id: str,
    secret: str | None,
) -> UpstreamRequest:
    """The URL and headers of one dial; ``secret`` is the channel's resolved provider key."""
    upstream_model = channel.upstream_model(public_model)
    base = channel.base_url.rstrip("/")
    if secret is not None and not secret.strip():
        secret = None  # start-up refuses an empty key; never send one if it slips through
    headers: dict[str, str] = {"X-Request-Id": request_id}
    if beta:
        headers[BETA_HEADER] = BETA_HEADER_VALUE
    if channel.kind == "azure":
        if channel.api_version:
            query = urlencode({"api-version": channel.api_version, "deployment": upstream_model})
            url = f"{base}{AZURE_PREVIEW_PATH}?{query}"
        else:
            url = f"{base}{AZURE_V1_PATH}?{urlencode({'model': upstream_model})}"
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
        url = f"{base}{REALTIME_PATH_SUFFIX}?{urlencode({'model': upstream_model})}"
        if secret is not None:
            headers["Authorization"] = f"Bearer {secret}"
    return UpstreamRequest(url=url, headers=headers)
