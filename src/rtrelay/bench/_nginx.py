"""The nginx target: the floor for a proxy that forwards WebSocket bytes without parsing frames.

One process (``master_process off``), so its CPU time is all relay work; proxy
buffering off and a 64 KB buffer, because with the 4 KB default nginx copies a 32 KB
frame in pieces and looks worse than it is. Installed from the Debian package when
missing, the first time a benchmark needs it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from rtrelay.bench._apt import PackageUnavailable, ensure_package
from rtrelay.bench._procs import Child, ChildFailed, Children, free_port
from rtrelay.bench._target import MODEL, Target

__all__ = [
    "TEMP_DIRS",
    "NginxUnavailable",
    "ensure_nginx",
    "find_nginx",
    "http_common",
    "nginx_config",
    "start_nginx",
]

START_TIMEOUT: Final = 15.0
_CANDIDATES: Final = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")


class NginxUnavailable(RuntimeError):
    """nginx is not installed and could not be installed."""


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found is not None:
        return found
    return next((c for c in _CANDIDATES if os.access(c, os.X_OK)), None)


def ensure_nginx(*, install: bool) -> str:
    """The nginx binary; with ``install``, ``apt-get install -y nginx`` first if it is missing.

    Ours runs from a generated config on its own port, whatever the package's own service
    (if the system starts one) does.

    Raises:
        NginxUnavailable: not installed, and installing was not allowed or failed.
    """
    try:
        return ensure_package("nginx", find_nginx, install=install)
    except PackageUnavailable as exc:
        raise NginxUnavailable(str(exc)) from exc


_TEMP_PATHS: Final = (
    ("client_body_temp_path", "body"),
    ("proxy_temp_path", "proxy"),
    ("fastcgi_temp_path", "fastcgi"),
    ("uwsgi_temp_path", "uwsgi"),
    ("scgi_temp_path", "scgi"),
)
TEMP_DIRS: Final = tuple(folder for _, folder in _TEMP_PATHS)
"""The folders under a config's temp folder nginx needs to exist."""


def http_common(temp: Path) -> str:
    """The ``http`` block's lines every generated config shares: nginx's temporary files
    under ``temp`` (the package's defaults are system paths), and ``$connection_upgrade``
    (``upgrade`` when the client asked for it, else ``close``)."""
    paths = "".join(f"    {directive} {temp}/{folder};\n" for directive, folder in _TEMP_PATHS)
    return f"""\
{paths}\
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
"""


def nginx_config(prefix: Path, port: int, upstream: str) -> str:
    """A one-process WebSocket reverse proxy on ``127.0.0.1:port`` to ``upstream`` (host:port)."""
    temp = prefix / "temp"
    return f"""\
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 16384;
    multi_accept on;
}}
http {{
    access_log off;
{http_common(temp)}    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_buffering off;
            proxy_buffer_size 64k;
            # Only checked for consistency with the 64k buffer; unused while buffering is off.
            proxy_buffers 4 64k;
            proxy_busy_buffers_size 128k;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }}
    }}
}}
"""


async def start_nginx(
    children: Children,
    workdir: Path,
    provider_base: str,
    *,
    install: bool,
    wrap: Sequence[str] = (),
    start_timeout: float = START_TIMEOUT,
) -> Target:
    """Install nginx if needed and allowed, then run it in front of the provider.

    Args:
        wrap: a command nginx runs under (``valgrind --tool=callgrind …``).
        start_timeout: how long it may take to accept connections.

    Raises:
        NginxUnavailable: nginx is missing and cannot be installed.
        ChildFailed: nginx did not start.
    """
    binary = await asyncio.to_thread(ensure_nginx, install=install)
    prefix = workdir / "nginx"
    for sub in TEMP_DIRS:
        (prefix / "temp" / sub).mkdir(parents=True, exist_ok=True)
    upstream = urlsplit(provider_base).netloc
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(prefix, port, upstream))
    child = children.add(
        Child(
            "nginx",
            [*wrap, binary, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)],
            log_path=prefix / "stdout.log",
        )
    )
    child.start()
    await _wait_listening(child, port, start_timeout)
    return Target(
        "nginx",
        f"ws://127.0.0.1:{port}/v1/realtime?model={MODEL}",
        {"Authorization": "Bearer sk-bench-direct"},
        pid=child.pid,
    )


async def _wait_listening(child: Child, port: int, timeout: float) -> None:
    """nginx prints nothing when ready: connect until it accepts."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if not child.running or loop.time() > deadline:
                error_log = (child.log_path.parent / "error.log").read_text(errors="replace")
                raise ChildFailed(
                    f"nginx did not start:\n{child.log_tail()}\n{error_log}"
                ) from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
