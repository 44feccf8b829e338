"""The server's certificate: rtrelay serves ``https://`` and ``wss://`` itself, and a new
certificate is picked up on SIGHUP without dropping a session.

One ``ssl.SSLContext`` serves the process's whole life: the listening socket was created
with it, and ``reload()`` loads the files again *into it*. OpenSSL copies the context's
certificate and key into each connection when its handshake begins, so live connections
(and their sessions) keep the certificate they were opened with while every later
handshake presents the new one: nothing is closed, nothing is re-bound.

A reload is tried on a throw-away context first. Loading a chain whose key does not
match straight into the live context would not leave the old pair in place: OpenSSL
drops a private key that does not fit a newly set certificate, and every new handshake
would then fail until the files were fixed. A bad reload is logged and changes nothing.
Both loads read one snapshot of the files (copied, mode 0600, into a private temporary
directory that is removed at once): the files are often replaced one after the other,
and a reload between the two writes must not see a new certificate with the old key in
one load and the pair in the other.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from rtrelay.config import ConfigError, Server
from rtrelay.log import edge_log

__all__ = ["ServerTLS", "server_tls"]

_PEM_BEGIN: Final = b"-----BEGIN CERTIFICATE-----"
_PEM_END: Final = b"-----END CERTIFICATE-----"


class ServerTLS:
    """The live server context and the files it is (re)loaded from.

    Raises:
        ConfigError: at construction, the files cannot be read or do not form a
            certificate chain with its private key.
    """

    __slots__ = ("cert", "context", "fingerprint", "key")

    def __init__(self, cert: str, key: str | None = None) -> None:
        self.cert = cert
        self.key = key
        self.context = _new_context()
        self.fingerprint = _load((self.context,), cert, key)
        """SHA-256 of the certificate served now (16 hex digits), for the log lines."""

    def reload(self) -> bool:
        """Load the files again into the live context; ``False`` (and the old
        certificate kept) when they are unreadable or do not match."""
        try:
            fingerprint = _load((_new_context(), self.context), self.cert, self.key)
        except ConfigError as exc:
            edge_log.error(
                "tls certificate not reloaded; the previous one is still served: %s",
                exc,
                extra={"event": "tls_reload_failed", "cert": self.cert},
            )
            return False
        changed = fingerprint != self.fingerprint
        self.fingerprint = fingerprint
        edge_log.info(
            "tls certificate reloaded" if changed else "tls certificate reloaded (unchanged)",
            extra={"event": "tls_reloaded", "cert": self.cert, "sha256": fingerprint},
        )
        return True


def server_tls(server: Server) -> ServerTLS | None:
    """The context ``[server] tls_cert``/``tls_key`` ask for, or ``None`` (plain http/ws).

    Raises:
        ConfigError: naming the file and what is wrong with it.
    """
    if server.tls_cert is None:
        return None
    return ServerTLS(server.tls_cert, server.tls_key)


def _new_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _no_passphrase() -> str:
    # Called by OpenSSL only for an encrypted key. Without this it would prompt on the
    # terminal, and a service (or a worker on SIGHUP) would hang waiting for an answer.
    raise ConfigError("the private key is encrypted; give rtrelay an unencrypted PEM key")


def _load(contexts: Sequence[ssl.SSLContext], cert: str, key: str | None) -> str:
    """Load one snapshot of the chain and key into each context in turn (the first that
    fails stops the rest); return the certificate's SHA-256 (16 hex digits)."""
    chain = _read(cert, "tls_cert")
    secret = None if key is None else _read(key, "tls_key")
    start = chain.find(_PEM_BEGIN)
    end = chain.find(_PEM_END, start)
    if start < 0 or end < 0:
        raise ConfigError(
            f"server.tls_cert {cert}: no PEM certificate in it ({_PEM_BEGIN.decode()})"
        )
    with tempfile.TemporaryDirectory(prefix="rtrelay-tls-") as private:  # mode 0700
        chain_copy = _write(Path(private) / "chain.pem", chain)
        key_copy = None if secret is None else _write(Path(private) / "key.pem", secret)
        for context in contexts:
            try:
                context.load_cert_chain(chain_copy, key_copy, password=_no_passphrase)
            except ConfigError as exc:
                raise ConfigError(f"server.tls_key {key or cert}: {exc}") from exc
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"server.tls_cert {cert}"
                    + (f" / tls_key {key}" if key else "")
                    + f": cannot load the certificate chain and its private key ({_reason(exc)})"
                ) from exc
    der = ssl.PEM_cert_to_DER_cert(chain[start : end + len(_PEM_END)].decode("ascii"))
    return hashlib.sha256(der).hexdigest()[:16]


def _read(path: str, field: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"server.{field} {path}: cannot read it ({_reason(exc)})") from exc


def _write(path: Path, data: bytes) -> str:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return str(path)


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return exc.strerror or str(exc)
