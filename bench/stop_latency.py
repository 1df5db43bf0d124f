"""How soon Stop answers: the Restore page's Stop button, clicked in Chromium during a run,
until the page shows "Stopped after ..." with the partial result.

Usage (from the repository root; needs Debian chromium, as the browser tests do)::

    flock /tmp/bench.lock .venv/bin/python -m bench.stop_latency --label after --threads 2 1

Per thread setting (``--threads N`` sets ``DIFFUSION_LAB_TORCH_THREADS`` and
``OMP_NUM_THREADS`` as in bench/live_cost.py; ``auto`` sets nothing) it starts a fresh
``streamlit run app.py`` and repeats: a fresh browser session opens the Restore page, sets
``--steps`` steps (a run far longer than the wait), presses Run, waits until the Stop button
shows and then a different delay per repetition (so that the click lands at different points
of the live view's redraw cycle), clicks Stop and times the click until "Stopped after" is on
screen (a MutationObserver in the page, no polling).

The live view waits in the server between redraws (ui/job_watch.py), and a click is handled
only when that wait ends: the wait now ends within 0.1 s of a click (``click_waiting``).
Results accumulate in ``bench/results/stop_latency.json`` under ``--label`` and the table in
``stop_latency.md`` is rewritten from all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.live_cost import (  # noqa: E402
    CHROMIUM,
    chromium_browser,
    env_for,
    shown_when,
    stored_results,
)
from bench.live_server import LiveServer, live_server  # noqa: E402
from diffusion_core.system.cpuinfo import cpu_model  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DEFAULT_OUT = RESULTS / "stop_latency"

TEXT_SHOWN = shown_when("document.body.innerText.includes(arg)")


def stop_once(browser, server: LiveServer, steps: int, delay_s: float,
              timeout_s: float = 120.0) -> dict:
    """One session: Run, wait ``delay_s`` after the Stop button shows, click it; seconds from
    the click to "Stopped after" on screen, and the steps the run made."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = ctx.new_page()
        page.set_default_timeout(timeout_s * 1000)
        page.goto(server.url + "/Restore")
        run = page.get_by_role("button", name="▶ Run", exact=True)
        run.wait_for()
        box = page.get_by_role("spinbutton", name="Steps", exact=True)
        box.fill(str(steps))
        box.press("Enter")
        page.get_by_text("where the run starts").first.wait_for()
        page.wait_for_timeout(500)
        run.click()
        stop = page.get_by_role("button", name="■ Stop")
        stop.wait_for()
        page.wait_for_timeout(delay_s * 1000)
        t0 = time.monotonic()
        stop.click()
        page.evaluate(TEXT_SHOWN, ["Stopped after", timeout_s * 1000])
        seconds = time.monotonic() - t0
        line = page.get_by_text("Stopped after").first.inner_text()
        return {"seconds": seconds, "delay_s": delay_s, "said": line.split(":")[0]}
    finally:
        ctx.close()


def measure(browser, threads: str, reps: int, steps: int) -> dict:
    env = env_for(threads, "default")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with live_server(tmp, dict(env, DIFFUSION_LAB_USER_MODELS=str(tmp / "um"))) as server:
            stop_once(browser, server, steps, 0.5)  # warm-up: loads and times the model
            for r in range(reps):
                row = stop_once(browser, server, steps, 1.0 + 0.45 * r)
                rows.append(row)
                print(f"  rep {r + 1}: Stop clicked {row['delay_s']:.2f} s into the run -> "
                      f"shown after {row['seconds']:.2f} s ({row['said']})", flush=True)
    secs = [r["seconds"] for r in rows]
    return {"threads": threads, "steps": steps, "reps": reps, "median_s": statistics.median(secs),
            "max_s": max(secs), "rows": rows, "load_avg": [round(v, 2) for v in os.getloadavg()],
            "when": time.strftime("%Y-%m-%d %H:%M")}


def table(results: list[dict]) -> str:
    lines = ["| version | torch threads | Stop click → \"Stopped after\" on screen, median (s) "
             "| max (s) | repetitions | load avg |", "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['label']} | {r['threads']} | **{r['median_s']:.2f}** | "
                     f"{r['max_s']:.2f} | {r['reps']} | {r['load_avg'][0]:.2f} |")
    return "\n".join(lines)


def write(out: Path, results: list[dict]) -> None:
    results = sorted(results, key=lambda r: (r["label"] != "before", r["label"], r["threads"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"results": results}, indent=1))
    out.with_suffix(".md").write_text(
        "# How soon Stop answers on the Restore page\n\n"
        "`flock /tmp/bench.lock .venv/bin/python -m bench.stop_latency --label L --threads N ...` "
        "(bench/stop_latency.py). A fresh `streamlit run` per thread setting and a warm-up run; "
        "then per repetition a fresh Chromium session opens the Restore page at its default "
        "size, sets a long run (column *steps* in the JSON), presses Run and clicks Stop "
        "1.0, 1.45, 1.9 ... s after the Stop button shows, so that the clicks land at "
        "different points of the live view's redraw cycle (every 1 s with a core left for "
        "the page, every 3 s when the run takes every core). Timed: the click until "
        "\"Stopped after ...\" is on screen. *before*: the live view's wait between redraws "
        "ended only on news, at its interval or after 1 s of quiet, and the click waited for "
        "it; *after*: the wait ends within 0.1 s of a click (`ui/job_watch.py`, "
        "`click_waiting`).\n\n"
        f"Machine: {cpu_model() or platform.processor()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}.\n\n" + table(results) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.stop_latency", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label", default="after")
    ap.add_argument("--threads", nargs="+", default=["2", "1"])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print("Debian chromium is needed (make chromium)", file=sys.stderr)
        return 2
    results = stored_results(a.out)
    with chromium_browser() as browser:
        for threads in a.threads:
            print(f"{a.label}: threads {threads} …", flush=True)
            r = measure(browser, threads, a.reps, a.steps) | {"label": a.label}
            results = [x for x in results
                       if (x["label"], x["threads"]) != (a.label, threads)] + [r]
            print(table([r]).splitlines()[-1], flush=True)
            write(a.out, results)
    print(f"wrote {a.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
