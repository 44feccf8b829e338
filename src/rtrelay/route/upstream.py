"""How to reach a channel's upstream: its URL and headers, per channel kind.

Provider URL forms are protocol.md §1. The provider key is read once, at start-up
(``config.channel_credentials``), into the ``Upstream`` the router holds for the
channel; from there it goes only into the upstream request's headers, and an empty
one is never sent. Nothing reads the environment on a dial.

A channel's ``ca_file`` (a provider behind a private CA) is likewise read once, into
the TLS context every dial of that channel verifies the provider with.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from rtrelay.config import Channel, ConfigError
from rtrelay.route.families import Family
from rtrelay.wire import (
    AZURE_PREVIEW_PATH,
    AZURE_V1_PATH,
    BETA_HEADER,
    BETA_HEADER_VALUE,
    LIVE_SESSIONS_PATH,
    OPENAI_PATH,
    REALTIME_PATH_SUFFIX,
    TRANSLATIONS_PATH,
)

__all__ = ["Upstream", "UpstreamRequest", "channel_tls"]


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    url: str
    headers: dict[str, str]
    tls: ssl.SSLContext | None = None
    """How to verify a wss:// upstream; ``None``: the system's CAs."""

    def __repr__(self) -> str:  # headers carry the provider key
        return f"UpstreamRequest(url={self.url!r})"


@dataclass(frozen=True, slots=True)
class Upstream:
    """A channel with its provider key resolved: what the router dials.

    ``config.Channel`` names the variable that holds the key and never the key (a
    config value may be printed); this pairs the two once, at start-up.
    """

    channel: Channel
    secret: str | None = field(default=None, repr=False)
    tls: ssl.SSLContext | None = field(init=False, repr=False)
    """The channel's ``ca_file`` loaded (``channel_tls``); ``None``: the system's CAs."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tls", channel_tls(self.channel))

    def request(
        self, public_model: str, *, beta: bool, request_id: str, family: Family = "realtime"
    ) -> UpstreamRequest:
        """The URL and headers of one dial for ``public_model`` in ``family``'s protocol (only
        ``openai`` and ``mock`` channels carry GPT-Live and translation: ``families.serves``)."""
        channel, secret = self.channel, self.secret
        # A transcription session may name no model (it is in the session config).
        upstream_model = channel.upstream_model(public_model) if public_model else ""
        base = channel.base_url.rstrip("/")
        if secret is not None and not secret.strip():
            secret = None  # start-up refuses an empty key; never send one if it slips through
        headers: dict[str, str] = {"X-Request-Id": request_id}
        if beta:
            headers[BETA_HEADER] = BETA_HEADER_VALUE
        if channel.kind == "azure":
            if channel.api_version:
                query = urlencode(
                    {"api-version": channel.api_version, "deployment": upstream_model}
                )
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
            url = base + _openai_path(family, upstream_model)
            if secret is not None:
                headers["Authorization"] = f"Bearer {secret}"
        return UpstreamRequest(url=url, headers=headers, tls=self.tls)


def _openai_path(family: Family, model: str) -> str:
    """The path after an OpenAI base URL (``…/v1``) for a session of ``family``."""
    if family == "live":  # the model travels in session.start, not the URL
        return LIVE_SESSIONS_PATH.removeprefix(_V1)
    if family == "translation":
        return f"{TRANSLATIONS_PATH.removeprefix(_V1)}?{urlencode({'model': model})}"
    if family == "transcription":  # the model is in the session config
        return f"{REALTIME_PATH_SUFFIX}?intent=transcription"
    return f"{REALTIME_PATH_SUFFIX}?{urlencode({'model': model})}"


_V1 = OPENAI_PATH.removesuffix(REALTIME_PATH_SUFFIX)


def channel_tls(channel: Channel) -> ssl.SSLContext | None:
    """A context trusting only ``channel.ca_file``'s CAs, or ``None`` when it names none.

    Raises:
        ConfigError: the file cannot be read or holds no CA certificate.
    """
    if channel.ca_file is None:
        return None
    try:
        return ssl.create_default_context(cafile=channel.ca_file)
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"channel {channel.name!r}: ca_file {channel.ca_file}: cannot load CA certificates "
            f"from it ({reason})"
        ) from exc
