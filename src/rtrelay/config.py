"""Settings: a TOML file, overridden by ``RTRELAY_<SECTION>_<FIELD>`` environment variables.

``load()`` is pure (path and environment are passed in) and validates everything
up front, so a bad config fails at start-up with a message that names the field,
never in the middle of a session. Config *names* secrets (environment variables
holding provider keys, the admin token); it never holds them.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import string
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "Admin",
    "Auth",
    "Breaker",
    "Channel",
    "ConfigError",
    "Limits",
    "Logging",
    "Redis",
    "Server",
    "Settings",
    "Store",
    "Timeouts",
    "channel_credentials",
    "load",
]

DEFAULT_MAX_FRAME_BYTES: Final = 16 * 1024 * 1024
"""``input_audio_buffer.append`` may carry 15 MiB of base64 audio (protocol.md §3)."""

HandshakeErrors = Literal["auto", "http", "event"]
ChannelKind = Literal["openai", "azure", "openai-compatible", "mock"]
Shape = Literal["ga", "beta"]


class ConfigError(ValueError):
    """The configuration is invalid; the message names the offending field.

    ``at`` is where in the document the problem is, when known: ``("server", "port")``,
    ``("channels", 0, "models")``. ``load`` turns it into the file's line number.
    """

    def __init__(self, message: str, *, at: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.at = at


@dataclass(frozen=True, slots=True, kw_only=True)
class Server:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    handshake_errors: HandshakeErrors = "auto"
    """``event`` accepts the upgrade to explain a refusal: browsers only ever see 1006 otherwise."""
    allowed_origins: tuple[str, ...] = ()
    """Origins allowed to connect, on top of a key's own list; empty means any."""
    tls_cert: str | None = None
    """PEM certificate chain (the server's certificate first): serve https:// and wss://.
    Read at start-up and again on SIGHUP; live sessions keep the certificate they began with."""
    tls_key: str | None = None
    """PEM private key of ``tls_cert`` (unencrypted; or in the same file as the chain)."""

    def __post_init__(self) -> None:
        if self.handshake_errors not in ("auto", "http", "event"):
            raise ConfigError("server.handshake_errors must be 'auto', 'http' or 'event'")
        if self.tls_key is not None and self.tls_cert is None:
            raise ConfigError("server.tls_key needs server.tls_cert (the certificate chain)")
        if not 0 <= self.port <= 65535:
            raise ConfigError("server.port must be 0..65535")
        if self.workers < 1:
            raise ConfigError("server.workers must be at least 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class Auth:
    mode: Literal["keys", "none"] = "keys"
    """``none`` admits every client without a credential: for trusted networks only."""

    def __post_init__(self) -> None:
        if self.mode not in ("keys", "none"):
            raise ConfigError("auth.mode must be 'keys' or 'none'")


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Seconds; ``None`` turns a timer off."""

    dial: float = 10.0
    """One provider handshake."""
    handshake_deadline: float = 20.0
    """All dial attempts of one client handshake together, failover included."""
    heartbeat: float | None = 20.0
    idle: float | None = 600.0
    max_session: float | None = 3600.0
    slow_consumer: float = 10.0
    """How long a send to a client that stopped reading may stay blocked."""
    drain: float = 30.0
    """How long live sessions may go on after SIGTERM."""
    request: float | None = 10.0
    """The whole HTTP request (head and body) must arrive this long after the connection
    opens (kept alive: after the next request's first byte); 408 if part of it came, a
    silent close if not."""
    sideband_attach: float = 5.0
    """A WebRTC call's metering sideband must be attached this long after the provider
    answers the offer, or the call is hung up (no call runs unmetered)."""
    session_start: float = 10.0
    """A GPT-Live client must send ``session.start`` (its first frame, which names the model)
    this long after the 101, or it is refused with ``session_start_timeout``."""

    def __post_init__(self) -> None:
        for name in (
            "dial",
            "handshake_deadline",
            "heartbeat",
            "idle",
            "max_session",
            "slow_consumer",
            "drain",
            "request",
            "sideband_attach",
            "session_start",
        ):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"timeouts.{name} must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    on_budget_spent: Literal["close", "keep_open"] = "close"
    """After refusing a ``response.create`` for a spent budget: end the session with 4429
    once the response in flight is done, or keep it open (refusing further responses)."""
    max_pending_connections: int = 1024
    """Connections waiting for a request head (per process, also capped at half the
    open-file limit); past it the oldest waiting one is closed to make room."""

    def __post_init__(self) -> None:
        if self.max_frame_bytes < 1024:
            raise ConfigError("limits.max_frame_bytes must be at least 1024")
        if self.max_pending_connections < 1:
            raise ConfigError("limits.max_pending_connections must be at least 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class Breaker:
    """Per-channel circuit breaker: opens after consecutive failed dials."""

    failure_threshold: int = 3
    base_cooldown: float = 1.0
    """Cap of the first cooldown; each re-opening doubles it (full jitter below the cap)."""
    max_cooldown: float = 60.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ConfigError("breaker.failure_threshold must be at least 1")
        if not 0 < self.base_cooldown <= self.max_cooldown:
            raise ConfigError("breaker: need 0 < base_cooldown <= max_cooldown")


@dataclass(frozen=True, slots=True, kw_only=True)
class Store:
    url: str = "sqlite+aiosqlite:///rtrelay.db"
    """SQLAlchemy URL: ``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://…``."""
    ledger: bool = True
    """``false``: a pure relay that writes no sessions, usage or refusals (token and cost
    metrics are still exported). Only with ``auth.mode = "none"``: budgets need a ledger."""
    journal: str = "auto"
    """Where ledger records wait while the database is unreachable (replayed once it
    answers, or at the next start): a file path, ``auto`` (beside a SQLite store, else
    ``./rtrelay-ledger-journal.jsonl``) or ``off`` (such records are dropped and counted)."""
    retention_days: int | None = 90
    """Refusals, refusal counters and sessions without usage older than this are pruned
    (hourly, in small batches); usage rows never are. ``0`` or ``off``: keep everything."""

    def __post_init__(self) -> None:
        if self.retention_days is not None and self.retention_days < 0:
            raise ConfigError("store.retention_days must be >= 0 (0 or 'off' keeps everything)")
        if not self.journal.strip():
            raise ConfigError("store.journal must be a path, 'auto' or 'off'")


@dataclass(frozen=True, slots=True, kw_only=True)
class Redis:
    url: str | None = None
    """When set, leases and rate limits live in Redis and several relays share them."""
    on_error: Literal["closed", "open"] = "closed"
    """Redis unreachable: ``closed`` refuses sessions whose key has a limit with 503
    ``limits_unavailable``; ``open`` admits them on this process's own limits (counted in
    ``rtrelay_limits_fallback_total``). Either way Redis is used again once it answers."""
    lease_ttl: float = 30.0
    """Seconds a session's lease in Redis lives without a renewal (renewed every third of
    it): how long a relay that died keeps its sessions counted against ``max_sessions``."""

    def __post_init__(self) -> None:
        if self.on_error not in ("closed", "open"):
            raise ConfigError("redis.on_error must be 'closed' or 'open'")
        if self.lease_ttl <= 0:
            raise ConfigError("redis.lease_ttl must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class Admin:
    token_env: str = "RTRELAY_ADMIN_TOKEN"
    """Environment variable holding the admin API token; unset means the admin API is off."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Logging:
    level: str = "INFO"
    format: Literal["json", "text"] = "json"


@dataclass(frozen=True, slots=True, kw_only=True)
class Channel:
    """One upstream: a provider account, region or deployment."""

    name: str
    kind: ChannelKind = "openai"
    base_url: str = "wss://api.openai.com/v1"
    api_key_env: str | None = None
    """Environment variable with the provider key; never the key itself."""
    models: Mapping[str, str] = field(default_factory=dict)
    """Public model name → the name the upstream knows (model or Azure deployment)."""
    priority: int = 0
    """Lower is tried first."""
    weight: int = 1
    shapes: tuple[Shape, ...] = ("ga",)
    api_version: str | None = None
    """Azure preview API version; unset means Azure's GA ``/openai/v1/realtime`` form."""
    auth: Literal["bearer", "api-key"] = "bearer"
    url_template: str | None = None
    """``openai-compatible``: e.g. ``wss://host/v1/realtime?model={model}``."""
    auth_header: str = "Authorization"
    """``openai-compatible``: header that carries the key (``Authorization`` gets ``Bearer``)."""
    ca_file: str | None = None
    """PEM file of the CA certificates that sign the upstream's certificate (a provider behind
    a private CA): trusted instead of the system's CAs, for this channel only."""

    def __post_init__(self) -> None:
        if self.kind not in ("openai", "azure", "openai-compatible", "mock"):
            raise ConfigError(f"channel {self.name!r}: unknown kind {self.kind!r}")
        if not self.models:
            raise ConfigError(f"channel {self.name!r}: 'models' must name at least one model")
        if self.weight < 1:
            raise ConfigError(f"channel {self.name!r}: weight must be at least 1")
        for shape in self.shapes:
            if shape not in ("ga", "beta"):
                raise ConfigError(f"channel {self.name!r}: unknown shape {shape!r}")
        if self.kind == "openai-compatible":
            if not self.url_template:
                raise ConfigError(f"channel {self.name!r}: openai-compatible needs url_template")
            fields = {f for _, f, _, _ in string.Formatter().parse(self.url_template) if f}
            if fields - {"model"}:
                raise ConfigError(
                    f"channel {self.name!r}: url_template may only use {{model}}, "
                    f"not {', '.join(sorted(fields - {'model'}))}"
                )
        if self.ca_file is not None:
            url = self.url_template if self.kind == "openai-compatible" else self.base_url
            if self.kind == "mock" or not (url or "").lower().startswith("wss://"):
                dials = "in-process" if self.kind == "mock" else repr(url)
                raise ConfigError(
                    f"channel {self.name!r}: ca_file verifies a wss:// upstream; "
                    f"this channel dials {dials}"
                )

    def upstream_model(self, public: str) -> str:
        return self.models[public]


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    server: Server = field(default_factory=Server)
    auth: Auth = field(default_factory=Auth)
    timeouts: Timeouts = field(default_factory=Timeouts)
    limits: Limits = field(default_factory=Limits)
    breaker: Breaker = field(default_factory=Breaker)
    store: Store = field(default_factory=Store)
    redis: Redis = field(default_factory=Redis)
    admin: Admin = field(default_factory=Admin)
    logging: Logging = field(default_factory=Logging)
    channels: tuple[Channel, ...] = ()
    prices: Mapping[str, Mapping[str, Decimal]] = field(default_factory=dict)
    """Per-model price overrides, USD per 1M tokens, e.g. ``{"gpt-realtime": {"text_in": 4}}``."""

    def __post_init__(self) -> None:
        names = [c.name for c in self.channels]
        if len(names) != len(set(names)):
            raise ConfigError("channel names must be unique")
        if not self.store.ledger and self.auth.mode == "keys":
            raise ConfigError(
                'store.ledger = false needs auth.mode = "none": keys have budgets, '
                "and budgets are kept in the ledger"
            )


def channel_credentials(channels: Sequence[Channel], environ: Mapping[str, str]) -> dict[str, str]:
    """Each channel's provider key, read once at start-up from the variable it names.

    A channel whose ``api_key_env`` names a variable that is unset, empty or not a
    plausible key fails start-up: the provider would refuse every session with 401, and
    clients would be told that *their* key is invalid. ``mock`` channels need no key.
    Nothing reads the environment for a key after this.

    Returns:
        Channel name → key, for the channels that name a variable.

    Raises:
        ConfigError: naming the channel and the variable (never the value).
    """
    keys: dict[str, str] = {}
    for channel in channels:
        name = channel.api_key_env
        if name is None:
            continue
        value = environ.get(name)
        if value is None:
            problem = "is not set"
        elif not value.strip():
            problem = "is empty"
        elif any(c.isspace() or not c.isprintable() for c in value):
            problem = "holds whitespace or a control character"
        else:
            keys[channel.name] = value
            continue
        if channel.kind != "mock":
            raise ConfigError(
                f"channel {channel.name!r}: the environment variable {name} (its api_key_env) "
                f"{problem}; set it to the provider key, or remove the channel"
            )
    return keys


_SECTIONS: Final[dict[str, type[Any]]] = {
    "server": Server,
    "auth": Auth,
    "timeouts": Timeouts,
    "limits": Limits,
    "breaker": Breaker,
    "store": Store,
    "redis": Redis,
    "admin": Admin,
    "logging": Logging,
}


def load(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``path`` (optional) and apply ``RTRELAY_<SECTION>_<FIELD>`` overrides.

    An error about a value from the file starts with ``FILE:LINE:``; one about an
    override names its variable.

    Raises:
        ConfigError: the file or an override is invalid.
    """
    raw: dict[str, Any] = {}
    text = ""
    if path is not None:
        try:
            text = Path(path).read_text()
            raw = tomllib.loads(text)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
    try:
        return from_mapping(raw, environ or {})
    except ConfigError as exc:
        line = _line_of(text, exc.at) if text and exc.at else None
        if line is None:
            raise
        raise ConfigError(f"{path}:{line}: {exc}", at=exc.at) from exc


def from_mapping(raw: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from an already parsed TOML document (tests use this directly)."""
    known_sections = [*_SECTIONS, "channels", "prices"]
    unknown = sorted(set(raw) - set(known_sections))
    if unknown:
        raise ConfigError(
            f"unknown config section {_with_suggestion(unknown[0], known_sections, '[{}]')}"
            + (f" (and {', '.join(unknown[1:])})" if unknown[1:] else "")
            + f"; the sections are {', '.join(f'[{name}]' for name in _SECTIONS)}, "
            "[[channels]] and [prices.MODEL]",
            at=(unknown[0],),
        )
    kwargs: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        values = dict(_table(raw.get(section, {}), f"[{section}]", (section,)))
        overrides = _env_overrides(section, cls, environ or {})
        values.update({name: value for name, (_, value) in overrides.items()})
        env_names = {name: var for name, (var, _) in overrides.items()}
        kwargs[section] = _build(cls, values, section, (section,), env_names)
    channels = raw.get("channels", ())
    if not isinstance(channels, list | tuple):
        raise ConfigError(
            "channels must be an array of tables: write each one as [[channels]]",
            at=("channels",),
        )
    kwargs["channels"] = tuple(
        _build(
            Channel,
            dict(_table(c, f"channels[{i}]", ("channels", i))),
            f"channels[{i}]",
            ("channels", i),
        )
        for i, c in enumerate(channels)
    )
    kwargs["prices"] = {
        str(model): {
            str(k): _price(v, f"prices.{model}.{k}", ("prices", str(model), str(k)))
            for k, v in _table(table, f"prices.{model}", ("prices", str(model))).items()
        }
        for model, table in _table(raw.get("prices", {}), "prices", ("prices",)).items()
    }
    return Settings(**kwargs)


def _table(value: Any, where: str, at: tuple[str | int, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table, got {_kind(value)}", at=at)
    return value


def _price(value: Any, where: str, at: tuple[str | int, ...]) -> Decimal:
    """USD per 1M tokens: a finite, non-negative number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ConfigError(f"{where} must be a number", at=at)
    try:
        price = Decimal(str(value))
    except ArithmeticError as exc:
        raise ConfigError(f"{where} must be a number, got {value!r}", at=at) from exc
    if not price.is_finite() or price < 0:
        raise ConfigError(f"{where} must be a finite number >= 0, got {value!r}", at=at)
    return price


def _env_overrides(
    section: str, cls: type[Any], environ: Mapping[str, str]
) -> dict[str, tuple[str, str]]:
    """Field → (variable, value) for the ``RTRELAY_<SECTION>_<FIELD>`` variables set."""
    out: dict[str, tuple[str, str]] = {}
    for f in dataclasses.fields(cls):
        name = f"RTRELAY_{section}_{f.name}".upper()
        if name in environ:
            out[f.name] = (name, environ[name])
    return out


def _build(
    cls: type[Any],
    values: dict[str, Any],
    where: str,
    at: tuple[str | int, ...],
    env_names: Mapping[str, str] | None = None,
) -> Any:
    """``cls(**values)`` with each value converted to its field's type.

    ``env_names``: the fields whose value is an environment variable's text (field →
    variable). Such a value is parsed (``"8091"`` is a port there), and errors name the
    variable; a value from the file must already have the field's TOML type.
    """
    env_names = env_names or {}
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    known = [f.name for f in fields]
    extra = sorted(set(values) - set(known))
    if extra:
        raise ConfigError(
            f"{where}: unknown field {_with_suggestion(extra[0], known, '{!r}')}"
            + (f" (and {', '.join(map(repr, extra[1:]))})" if extra[1:] else "")
            + f"; the fields are {', '.join(known)}",
            at=(*at, extra[0]),
        )
    required = [
        f.name
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [name for name in required if name not in values]
    if missing:
        raise ConfigError(f"{where}: the field {missing[0]!r} is required", at=at)
    converted: dict[str, Any] = {}
    for name, value in values.items():
        variable = env_names.get(name)
        try:
            converted[name] = _convert(
                value, hints[name], variable or f"{where}.{name}", text=variable is not None
            )
        except ConfigError as exc:
            exc.at = () if variable else (*at, name)
            raise
    try:
        return cls(**converted)
    except ConfigError as exc:
        if exc.at:
            raise
        named = _field_named_in(str(exc), known)
        if named is not None and named in env_names:
            raise ConfigError(f"{exc} (from {env_names[named]})") from exc
        exc.at = at if named is None else (*at, named)
        raise


def _convert(value: Any, hint: Any, where: str, *, text: bool = False) -> Any:
    """Coerce a value to the annotated type.

    ``text``: the value is an environment variable's text, to be parsed (``"8091"`` is an
    int, ``"true"`` a bool, ``"a,b"`` a list). A value from the file must already have
    its TOML type: ``port = "8091"`` is refused with the fix rather than silently read.
    ``"off"``/``"none"`` turn off an optional setting from either source.
    """
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        empty = value is None or (isinstance(value, str) and value.lower() in ("", "none", "off"))
        if empty and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], where, text=text)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(map(repr, args))
            suggestion = _with_suggestion(value, args, "{!r}") if isinstance(value, str) else ""
            got = suggestion or repr(value)
            raise ConfigError(f"{where} must be one of {choices}; got {got}")
        return value
    if origin is tuple:
        if not isinstance(value, str | list | tuple):
            raise ConfigError(
                f'{where} must be a list, e.g. ["a", "b"] (or "a,b"); got {_kind(value)}'
            )
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(
            _convert(i.strip() if isinstance(i, str) else i, args[0], where, text=text)
            for i in items
        )
    if origin is not None and issubclass(origin, Mapping):
        if isinstance(value, list):  # models = ["a", "b"]: served under their own names
            return {str(v): str(v) for v in value}
        if not isinstance(value, Mapping):
            example = value if isinstance(value, str) and value else "gpt-realtime"
            raise ConfigError(
                f"{where} must be a list of names, e.g. [{_quoted(example)}], or a table of "
                f"public name = upstream name, e.g. {{ {_quoted(example)} = "
                f'"my-deployment" }}; got {_kind(value)}'
            )
        return {str(k): str(v) for k, v in value.items()}
    if hint is bool:
        return _bool(value, where, text=text)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if hint in (int, float):
        if isinstance(value, str) and not text:
            field = where.rsplit(".", 1)[-1]
            raise ConfigError(
                f"{where}: expected {hint.__name__}, got the string {value!r}: a number is "
                f"written without quotes ({field} = {value.strip() or 0})"
            )
        return _number(value, hint, where)
    return value


_TRUE: Final = ("1", "true", "yes", "on")
_FALSE: Final = ("0", "false", "no", "off")


def _bool(value: Any, where: str, *, text: bool) -> bool:
    if isinstance(value, bool):
        return value
    if text and isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    if text:
        raise ConfigError(
            f"{where} must be true or false (also 1/0, yes/no, on/off); got {value!r}"
        )
    raise ConfigError(
        f"{where} must be true or false (a TOML boolean, without quotes); got {_kind(value)}"
    )


def _kind(value: Any) -> str:
    """``value`` as an error message shows it: its TOML type, and the value if short."""
    kind = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        tuple: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)
    shown = repr(value)
    return f"{kind} {shown}" if len(shown) <= 40 and not isinstance(value, dict) else kind


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _with_suggestion(name: str, known: Sequence[str], shape: str) -> str:
    """``name`` as ``shape`` shows it, with "did you mean" when one known name is close."""
    close = difflib.get_close_matches(name, [str(k) for k in known], n=1, cutoff=0.6)
    shown = shape.format(name)
    return f"{shown} (did you mean {shape.format(close[0])}?)" if close else shown


def _field_named_in(message: str, names: Sequence[str]) -> str | None:
    """The field a validation message names first (to point at its line), if any."""
    found = [(m.start(), name) for name in names if (m := re.search(rf"\b{name}\b", message))]
    return min(found)[1] if found else None


_KEY: Final = r"(?:\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+)"
_KEY_LINE: Final = re.compile(rf"^({_KEY}(?:\s*\.\s*{_KEY})*)\s*=")
_KEY_PART: Final = re.compile(r"\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_-]+)")


def _line_of(text: str, at: tuple[str | int, ...]) -> int | None:
    """The line of ``text`` (TOML) that holds ``at``: the key's own line, else the header
    of the deepest table on its path. A plain scan: enough for the tables and keys a
    config has (no multi-line strings, no inline tables of tables)."""
    table: tuple[str | int, ...] = ()
    arrays: dict[tuple[str | int, ...], int] = {}
    best: tuple[int, int] | None = None  # (depth matched, line)
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        path: tuple[str | int, ...] | None = None
        if stripped.startswith("[["):
            name = _key_path(stripped[2 : stripped.find("]]")])
            arrays[name] = arrays.get(name, -1) + 1
            table = path = (*name, arrays[name])
        elif stripped.startswith("["):
            table = path = _key_path(stripped[1 : stripped.find("]")])
        elif match := _KEY_LINE.match(stripped):
            path = (*table, *_key_path(match.group(1)))
        if path is None or at[: len(path)] != path:
            continue
        if path == at:
            return number
        if best is None or len(path) > best[0]:
            best = (len(path), number)
    return None if best is None else best[1]


def _key_path(key: str) -> tuple[str, ...]:
    return tuple(a or b or c for a, b, c in _KEY_PART.findall(key))


_MAX_INT: Final = 2**63 - 1
"""Beyond any sensible setting, and the most a database or C library will take."""


def _number(value: Any, hint: type[int] | type[float], where: str) -> int | float:
    """An int or float setting: finite, within 64 bits (1e999 or 10^30 is a typo)."""
    if isinstance(value, bool | list | dict | tuple) or value is None:
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    try:
        number = hint(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}") from exc
    if isinstance(number, float) and not math.isfinite(number):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    if abs(number) > _MAX_INT:
        raise ConfigError(f"{where}: {value!r} is out of range")
    return number
