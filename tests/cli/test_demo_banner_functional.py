"""``rtrelay serve --demo``'s banner, as a newcomer uses it: every command and snippet it prints
runs as printed, from a shell where ``rtrelay`` is not on the PATH (as after scripts/demo)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser

from rtrelay.cli._demo import demo_banner, rtrelay_command
from support import Demo, demo_process, free_port, serving

ROOT = Path(__file__).resolve().parents[2]
RTRELAY = Path(sys.executable).with_name("rtrelay")
BARE_PATH = "/usr/local/bin:/usr/bin:/bin"
"""A PATH without the virtualenv, as the reader's shell has after scripts/demo."""


# --- the command the banner prints --------------------------------------------------------


def _script(where: Path) -> Path:
    (where / "bin").mkdir(parents=True)
    script = where / "bin" / "rtrelay"
    script.write_text("#!/bin/sh\n")
    return script


def test_rtrelay_on_the_path_is_printed_as_rtrelay(tmp_path: Path) -> None:
    script = _script(tmp_path / ".venv")
    python = str(script.with_name("python"))
    assert rtrelay_command(executable=python, which=lambda _: str(script)) == "rtrelay"


def test_rtrelay_off_the_path_is_printed_as_a_path_below_the_directory(tmp_path: Path) -> None:
    script = _script(tmp_path / ".venv")
    python = str(script.with_name("python"))
    shown = rtrelay_command(executable=python, which=lambda _: None, cwd=tmp_path)
    assert shown == ".venv/bin/rtrelay"
    elsewhere = rtrelay_command(executable=python, which=lambda _: None, cwd=tmp_path / "x")
    assert elsewhere == str(script)


def test_another_rtrelay_on_the_path_is_not_taken_for_this_one(tmp_path: Path) -> None:
    script = _script(tmp_path / ".venv")
    other = _script(tmp_path / "other")
    python = str(script.with_name("python"))
    shown = rtrelay_command(executable=python, which=lambda _: str(other), cwd=tmp_path)
    assert shown == ".venv/bin/rtrelay"


def test_the_banner_says_how_to_put_rtrelay_on_the_path_only_when_needed() -> None:
    off = demo_banner("127.0.0.1:8080", "rk_x", command=".venv/bin/rtrelay")
    assert "try it     .venv/bin/rtrelay probe ws://127.0.0.1:8080/v1 --key rk_x" in off
    assert "`. .venv/bin/activate` puts it there" in off
    on = demo_banner("127.0.0.1:8080", "rk_x", command="rtrelay")
    assert "try it     rtrelay probe" in on and "activate" not in on


def test_with_tls_the_banner_prints_wss_and_https() -> None:
    text = demo_banner("127.0.0.1:8443", "rk_x", tls=True, command="rtrelay")
    assert "endpoint   wss://127.0.0.1:8443/v1/realtime?model=gpt-realtime" in text
    assert "POST https://127.0.0.1:8443/v1/realtime/client_secrets" in text
    assert "ws://" not in text.replace("wss://", "")


# --- the real banner, run as printed -------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    # A reader's shell: no venv, and no asyncio debug mode (its slow-callback warnings on
    # a loaded machine would be mixed into the output the tests read).
    drop = {"VIRTUAL_ENV", "PYTHONASYNCIODEBUG"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, "PATH": BARE_PATH, **extra}


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    async with demo_process((str(RTRELAY),), cwd=tmp_path, env=_env()) as running:
        yield running


async def _run(*argv: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(60):
        out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_the_try_it_command_runs_as_printed_without_rtrelay_on_the_path(demo: Demo) -> None:
    command = demo.line("try it")
    assert command.startswith(f"{RTRELAY} probe ws://127.0.0.1:{demo.port}/v1 --key rk_")
    assert "not on your PATH" in demo.banner
    code, out = await _run("sh", "-c", command, cwd=demo.cwd, env=_env())
    assert code == 0, out
    assert "a session was established" in out


@pytest.mark.parametrize(
    ("start", "end"),
    [("Python, GA shape", "Python, beta shape"), ("Python, beta shape", "Python, GPT-Live")],
    ids=["ga", "beta"],
)
async def test_the_python_snippets_run_as_printed(demo: Demo, start: str, end: str) -> None:
    code, out = await _run(sys.executable, "-c", demo.block(start, end), cwd=demo.cwd, env=_env())
    assert code == 0, out
    assert "simulated realtime provider" in out  # the reply's text, streamed
    assert "error:" not in out


async def test_the_gpt_live_snippet_runs_as_printed(demo: Demo) -> None:
    snippet = demo.block("Python, GPT-Live", "Browser:")
    code, out = await _run(sys.executable, "-c", snippet, cwd=demo.cwd, env=_env())
    assert code == 0, out
    assert "error:" not in out
    transcript, _, usage = out.rpartition("\n[")
    assert transcript.strip()  # the reply's transcript, streamed
    assert usage.endswith("s of audio so far]\n")
    assert float(usage.split()[0]) > 0


async def test_the_ga_snippet_prints_why_a_wrong_key_is_refused(demo: Demo) -> None:
    snippet = demo.block("Python, GA shape", "Python, beta shape").replace(demo.key, "rk_wrong")
    code, out = await _run(sys.executable, "-c", snippet, cwd=demo.cwd, env=_env())
    assert code == 0, out
    assert "refused: 401 " in out
    assert '"code":"invalid_api_key"' in out


async def test_a_beta_client_given_the_ga_session_fields_is_told_which_one(demo: Demo) -> None:
    """The trap the beta snippet exists for: the GA snippet on a beta connection. Its
    error is now printed with its message, not as a bare "error"."""
    snippet = demo.block("Python, GA shape", "Python, beta shape").replace(
        "client.realtime.connect", "client.beta.realtime.connect"
    )
    code, out = await _run(sys.executable, "-c", snippet, cwd=demo.cwd, env=_env())
    assert code == 0, out
    assert "Unknown parameter: 'session.output_modalities'" in out, out


async def test_the_browser_example_mints_a_token_and_the_page_talks(
    demo: Demo, browser: Browser
) -> None:
    command = demo.banner.splitlines()[
        next(i for i, line in enumerate(demo.banner.splitlines()) if "60-line server" in line) + 1
    ].strip()
    assert command.startswith(f"RTRELAY_KEY={demo.key} RTRELAY_URL=http://127.0.0.1:{demo.port} ")
    example_port = free_port()
    proc = await asyncio.create_subprocess_exec(
        "sh",
        "-c",
        f"exec env {command}",
        cwd=demo.cwd,
        env=_env(PORT=str(example_port)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(15):
            ready = (await proc.stdout.readline()).decode()
        assert ready.startswith(f"token example: http://127.0.0.1:{example_port}"), ready
        page = await browser.new_page()
        seen: list[str] = []
        page.on("websocket", lambda ws: seen.append(ws.url))
        await page.goto(f"http://127.0.0.1:{example_port}/")
        assert "rk_" not in await page.content()  # the key never reaches the page
        await page.click("#go")
        await page.wait_for_function(
            "document.getElementById('log').textContent.includes('closed 1000')", timeout=20000
        )
        log = await page.inner_text("#log")
        assert "session.created" in log and "response.done" in log
        assert seen == [f"ws://127.0.0.1:{demo.port}/v1/realtime?model=gpt-realtime"]
    finally:
        proc.terminate()
        await proc.wait()


async def _blank_page(request: web.Request) -> web.Response:
    return web.Response(text="<!doctype html><title>a page</title>", content_type="text/html")


async def test_the_webrtc_snippet_runs_as_printed_in_chromium(
    demo: Demo, media_browser: Browser
) -> None:
    """The banner's WebRTC code, as printed, in a page of another origin (a cross-origin
    POST, as from a real site) with an ek_ token minted by the demo key: the call comes
    up and ``session.created`` arrives on the ``oai-events`` channel."""
    snippet = demo.block("Browser over WebRTC", "Ctrl-C")
    assert f'fetch("{demo.url}/v1/realtime/calls?model=gpt-realtime"' in snippet
    body = {"session": {"type": "realtime", "model": "gpt-realtime"}}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{demo.url}/v1/realtime/client_secrets",
            json=body,
            headers={"Authorization": f"Bearer {demo.key}"},
        ) as resp:
            assert resp.status == 200, await resp.text()
            token = (await resp.json())["value"]
    assert token.startswith("ek_")
    page_app = web.Application()
    page_app.router.add_get("/", _blank_page)
    async with serving(page_app) as page_url:
        page = await media_browser.new_page()
        logged: list[str] = []
        # console.log only: the page's own errors (its missing favicon) are not the call's
        page.on("console", lambda m: logged.append(m.text) if m.type == "log" else None)
        await page.goto(page_url)
        await page.evaluate(f"async (token) => {{\n{snippet}\n}}", token)
        async with asyncio.timeout(20):
            while "session.created" not in logged:
                await asyncio.sleep(0.05)
        await page.close()
    assert logged[0] == "session.created", logged
