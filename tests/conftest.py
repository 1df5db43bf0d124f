"""Shared fixtures: a real `streamlit run` server on a free port and a headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.live_server import stop_process  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=3) as r:
                if r.read().strip() == b"ok":
                    return
        except Exception as e:  # noqa: BLE001 - still starting
            last = e
        time.sleep(0.5)
    raise TimeoutError(f"streamlit did not become healthy at {url}: {last}")


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def user_models_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("user_models")
    os.environ["DIFFUSION_LAB_USER_MODELS"] = str(d)
    return d


@pytest.fixture(scope="session")
def app_server(user_models_dir, tmp_path_factory):
    """A real `streamlit run app.py` on a free loopback port. Yields the base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    env = dict(os.environ, DIFFUSION_LAB_USER_MODELS=str(user_models_dir),
               PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url)
            yield url
        finally:
            stop_process(proc)


@pytest.fixture(scope="session")
def browser():
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.skip("Debian chromium is not installed (make test installs it when root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    ctx.close()


@pytest.fixture()
def models_dir(tmp_path, monkeypatch):
    """A private user-model folder for Train-page job tests; never leaves a job running."""
    from diffusion_core.jobs import train as tj

    d = tmp_path / "user_models"
    monkeypatch.setenv("DIFFUSION_LAB_USER_MODELS", str(d))
    yield d
    job = tj.current_job()
    if job is not None and not job.done:  # never leave a job running for the next test
        job.stop()
        job.wait(120)
