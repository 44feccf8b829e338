"""``edge/tls.py`` without sockets: handshakes between two contexts over memory BIOs."""

from __future__ import annotations

import contextlib
import ssl
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from tls_helpers import Pki, der_sha256

from rtrelay import config
from rtrelay.edge.tls import ServerTLS, server_tls


def _served(server: ssl.SSLContext, client: ssl.SSLContext) -> str:
    """Run one TLS handshake in memory; the SHA-256 of the certificate the client saw."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    tls_client = client.wrap_bio(c_in, c_out, server_hostname="127.0.0.1")
    tls_server = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (tls_client, tls_server):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if tls_client.version() and tls_server.version():
            break
    der = tls_client.getpeercert(binary_form=True)
    assert der is not None
    return der_sha256(der)


def test_new_handshakes_get_the_reloaded_certificate(pki: Pki, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    first = pki.issue(cert, key)
    tls = ServerTLS(str(cert), str(key))
    assert _served(tls.context, pki.client_context()) == first
    second = pki.issue(cert, key)
    assert tls.reload()
    assert _served(tls.context, pki.client_context()) == second
    assert tls.fingerprint == second[:16]


def test_a_key_that_does_not_match_is_refused_and_the_old_pair_kept(
    pki: Pki, tmp_path: Path
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    first = pki.issue(cert, key)
    tls = ServerTLS(str(cert), str(key))
    pki.issue(cert, tmp_path / "unused.pem")  # a new certificate, the old key
    assert not tls.reload()
    assert _served(tls.context, pki.client_context()) == first


def test_chain_and_key_in_one_file(pki: Pki, tmp_path: Path) -> None:
    issued = pki.ca.issue_cert("127.0.0.1")
    both = tmp_path / "both.pem"
    issued.private_key_and_cert_chain_pem.write_to_path(str(both))
    tls = server_tls(config.Server(tls_cert=str(both)))
    assert tls is not None
    _served(tls.context, pki.client_context())


def test_plain_when_no_certificate_is_configured() -> None:
    assert server_tls(config.Server()) is None


def _encrypted_key(issued: trustme.LeafCert, path: Path) -> None:
    key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), None)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "server.tls_cert .*missing.pem: cannot read it"),
        ("not_pem", "no PEM certificate in it"),
        ("mismatch", "KEY_VALUES_MISMATCH"),
        ("encrypted", "encrypted; give rtrelay an unencrypted PEM key"),
    ],
)
def test_unusable_files_are_a_config_error_naming_them(
    pki: Pki, tmp_path: Path, case: str, message: str
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    pki.issue(cert, key)
    if case == "missing":
        cert = tmp_path / "missing.pem"
    elif case == "not_pem":
        cert.write_text("hello\n")
    elif case == "mismatch":
        pki.issue(tmp_path / "other.pem", key)
    elif case == "encrypted":
        _encrypted_key(pki.ca.issue_cert("127.0.0.1"), key)
        pki.ca.issue_cert("127.0.0.1")
    with pytest.raises(config.ConfigError, match=message):
        ServerTLS(str(cert), str(key))


def test_a_key_without_a_certificate_is_refused_at_load() -> None:
    with pytest.raises(config.ConfigError, match=r"tls_key needs server\.tls_cert"):
        config.from_mapping({"server": {"tls_key": "/k.pem"}})


@pytest.mark.parametrize(
    ("channel", "message"),
    [
        ({"kind": "mock"}, "ca_file verifies a wss:// upstream; this channel dials in-process"),
        ({"base_url": "ws://127.0.0.1:9/v1"}, "this channel dials 'ws://127.0.0.1:9/v1'"),
    ],
)
def test_ca_file_is_only_for_a_wss_upstream(channel: dict[str, str], message: str) -> None:
    raw = {"name": "c", "models": ["m"], "ca_file": "/ca.pem", **channel}
    with pytest.raises(config.ConfigError, match=message):
        config.from_mapping({"channels": [raw]})


def test_an_unreadable_ca_file_fails_start_up_naming_the_channel(tmp_path: Path) -> None:
    from rtrelay.route.upstream import Upstream

    channel = config.Channel(
        name="private", base_url="wss://h/v1", models={"m": "m"}, ca_file=str(tmp_path / "x")
    )
    with pytest.raises(config.ConfigError, match=r"channel 'private': ca_file .*x: cannot load"):
        Upstream(channel)
