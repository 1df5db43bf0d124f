"""Several visitors at once: four browser sessions restore at the same time on one server.

A private server (bench/live_server.py: the conftest command plus a counters file) so that
the test can see what the server process did: how often it read the model from disk
(diffusion_core.system.counters) and how much memory it used (/proc/<pid>/status). The bigger
version of this is bench/load_bench.py.
"""

from __future__ import annotations

import json

import pytest

from bench.live_server import live_server
from bench.load_bench import SIZES, measure
from ui.picker import SIZES as PAGE_SIZES

pytestmark = pytest.mark.browser

SESSIONS, SIZE, STEPS = 4, 128, 3
MEMORY_BOUND_MB = 2500


@pytest.fixture(scope="module")
def server(user_models_dir, tmp_path_factory):
    env = {"DIFFUSION_LAB_USER_MODELS": str(user_models_dir)}
    with live_server(tmp_path_factory.mktemp("concurrency_server"), env) as srv:
        yield srv


def test_the_bench_knows_the_page_sizes():
    assert SIZES == PAGE_SIZES


def test_four_sessions_restore_at_once(browser, server, artifacts_dir):
    before = server.stats()
    assert before.get("model_loads", 0) == 0  # nothing was loaded yet
    r = measure(browser, server, SESSIONS, SIZE, STEPS, timeout=240)
    (artifacts_dir / "concurrency.json").write_text(json.dumps(r, indent=1))
    print(f"\n{SESSIONS} sessions × {SIZE} px × {STEPS} steps: set-up {r['setup_s']:.1f} s, "
          f"Run → result fastest {r['fastest_s']:.1f} s / median {r['median_s']:.1f} s / "
          f"slowest {r['slowest_s']:.1f} s; queued {r['queued']}; server RSS "
          f"{r['rss_before_mb']:.0f} → {r['rss_after_mb']:.0f} MB, peak {r['peak_mb']:.0f} MB")
    # every session got its own final picture and metrics, without an exception
    assert r["finished"] == SESSIONS, r["rows"]
    assert r["complete"] == SESSIONS
    assert r["exceptions"] == 0
    # the model was read from disk once, for all four
    stats = server.wait_stats(lambda s: s.get("restore_done") == SESSIONS
                              and s.get("restore_threads") == 0, timeout=30)
    assert stats.get("model_loads") == 1, stats
    per_model = {k: v for k, v in stats.items() if k.startswith("model_loads:")}
    assert list(per_model.values()) == [1], per_model  # one model, one device, one read
    # every run ended and its worker thread is gone
    assert stats.get("restore_started") == SESSIONS and stats.get("restore_done") == SESSIONS
    assert stats.get("restore_threads") == 0
    # memory of the whole server process stays bounded
    assert r["peak_mb"] is not None and r["peak_mb"] < MEMORY_BOUND_MB, r
    assert server.healthy()
