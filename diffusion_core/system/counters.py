"""Process-wide event counters, so that tests and benchmarks can watch a running server.

``bump(name)`` adds to a counter and ``snapshot()`` returns a copy of them all. When the
environment variable ``DIFFUSION_LAB_STATS_FILE`` names a file (it must be set before the
server starts; ``bench/live_server.py`` does so), every change is also written there as one
JSON object, replaced atomically, so that another process can read what a
``streamlit run`` server did. Unset (the default), nothing is written anywhere.

Counters in use:

``model_loads`` / ``model_loads:<name>@<device>``
    model weights read from disk (:func:`diffusion_core.models.registry.load_denoiser`).
``restore_threads``
    restore worker threads alive right now (:mod:`diffusion_core.jobs.restore_jobs`).
``restore_started``, ``restore_done``, ``restore_stopped``, ``restore_failed``
    restore runs started, and how they ended.
``restore_abandoned``
    runs stopped because the browser session that started them went away.

No streamlit here.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter

STATS_FILE_ENV = "DIFFUSION_LAB_STATS_FILE"

_counts: Counter[str] = Counter()
_lock = threading.Lock()


def bump(name: str, n: int = 1) -> None:
    """Add ``n`` (may be negative) to counter ``name``."""
    with _lock:
        _counts[name] += n
        path = os.environ.get(STATS_FILE_ENV)
        if path:
            _write(path, dict(_counts))


def snapshot() -> dict[str, int]:
    """A copy of every counter."""
    with _lock:
        return dict(_counts)


def _write(path: str, data: dict) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(dict(data, pid=os.getpid()), f, sort_keys=True)
        os.replace(tmp, path)
    except OSError:  # a counters file is a nicety: never let it break the app
        pass
