"""A private ``streamlit run app.py`` that a load test or benchmark can watch from outside.

The same command as the ``app_server`` fixture in tests/conftest.py, plus what a load test
needs to see: the server's process id (for its memory in ``/proc/<pid>/status``), its log,
and the counters file of :mod:`diffusion_core.system.counters` (model loads, restore threads
alive, abandoned runs), switched on through ``DIFFUSION_LAB_STATS_FILE``.

    with live_server(tmp_dir, {"DIFFUSION_LAB_ORPHAN_GRACE_S": "2"}) as srv:
        ...  # browse srv.url
        srv.stats()["model_loads"], srv.memory_mb()["hwm"]
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Ask a child process to end; kill it when it has not ended within ``timeout`` s."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_healthy(url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=timeout) as r:
            return r.read().strip() == b"ok"
    except Exception:  # noqa: BLE001 - not (yet) answering
        return False


def read_proc_status(pid: int) -> dict[str, float]:
    """Memory of a process from ``/proc/<pid>/status`` in MB: ``rss`` (now) and ``hwm``
    (the peak so far). Empty where /proc is not available."""
    out: dict[str, float] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            kb = float(rest.split()[0])  # the kernel reports kB
            out["rss" if key == "VmRSS" else "hwm"] = kb / 1024.0
    return out


@dataclass
class LiveServer:
    url: str
    proc: subprocess.Popen
    log: Path
    stats_file: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def healthy(self) -> bool:
        return self.proc.poll() is None and is_healthy(self.url)

    def stats(self) -> dict:
        """The server's counters (empty before the first event)."""
        try:
            return json.loads(self.stats_file.read_text())
        except (OSError, ValueError):
            return {}

    def wait_stats(self, cond: Callable[[dict], bool], timeout: float = 60.0) -> dict:
        """Poll the counters until ``cond(stats)`` holds; returns the last stats either way."""
        deadline = time.monotonic() + timeout
        s = self.stats()
        while not cond(s) and time.monotonic() < deadline:
            time.sleep(0.25)
            s = self.stats()
        return s

    def memory_mb(self) -> dict[str, float]:
        return read_proc_status(self.pid)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


@contextmanager
def live_server(workdir: Path, env: dict[str, str] | None = None,
                start_timeout: float = 90.0) -> Iterator[LiveServer]:
    """Start the app on a free loopback port; stop it on exit. ``workdir`` gets the log and
    the counters file."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "streamlit.log"
    stats_file = workdir / "counters.json"
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), DIFFUSION_LAB_STATS_FILE=str(stats_file))
    full_env.update(env or {})
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=fh, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + start_timeout
            while not is_healthy(url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start at {url}; see {log}")
                time.sleep(0.5)
            yield LiveServer(url, proc, log, stats_file)
        finally:
            stop_process(proc)
