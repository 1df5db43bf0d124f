"""Load benchmark: several browser sessions restore a picture at the same time on one server.

Usage (from the repository root; needs Debian chromium, as the browser tests do)::

    .venv/bin/python -m bench.load_bench                          # 4x128x3 and 8x256x10
    .venv/bin/python -m bench.load_bench --config 4x128x3 --config 6x256x5

Each ``--config SESSIONSxSIZExSTEPS`` starts a fresh ``streamlit run app.py`` (see
bench/live_server.py), opens SESSIONS separate browser contexts on the Restore page, sets
the working size and the number of steps, presses Run in all of them, then waits for all
results. It reports, per configuration: the time from Run to the result on screen (slowest,
median, fastest), how many sessions had to queue (at most ``DIFFUSION_LAB_MAX_RUNS``, default
2, runs go at once), how often the model was read from disk (should be once), and the
server's memory (resident now and at its peak, from /proc). Writes ``bench/results/load.md``
(or ``--out``).

tests/test_concurrency.py runs the small version of this with the same helpers.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.live_server import LiveServer, live_server  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results" / "load.md"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
SIZES = [128, 192, 256, 384, 512, 768, 1024]  # the working sizes of ui.picker.SIZES
SIZE_SLIDER = "Working size (longest side, pixels)"
SAMPLE_SIDE = 512  # the default sample (astronaut) is 512x512


# ---------------------------------------------------------------- driving the Restore page


def set_working_size(page, size: int) -> None:
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}")
    slider = page.get_by_role("slider", name=SIZE_SLIDER)
    slider.focus()
    slider.press("Home")
    for _ in range(SIZES.index(size)):
        slider.press("ArrowRight")
    page.get_by_role("slider", name=SIZE_SLIDER).and_(
        page.locator(f"[aria-valuetext='{size}']")).wait_for()
    if size < SAMPLE_SIDE:
        page.get_by_text(f"Resized from {SAMPLE_SIDE}×{SAMPLE_SIDE} to {size}×{size}").wait_for()


def set_steps(page, n: int) -> None:
    box = page.get_by_role("spinbutton", name="Steps", exact=True)
    box.fill(str(n))
    box.press("Enter")
    page.wait_for_function(
        "n => [...document.querySelectorAll('input')].some("
        "i => i.getAttribute('aria-label') === 'Steps' && i.value === String(n))", arg=n)


def start_from_pure_noise_step(page) -> None:
    """Move 'Noise step to start from' to its end (T), so that many steps are possible."""
    slider = page.get_by_role("slider", name="Noise step to start from")
    slider.focus()
    slider.press("End")
    page.get_by_text(re.compile(r"where the run starts: noise step 1000$")).wait_for()


def prepare_restore(page, url: str, size: int, steps: int, from_the_end: bool = False) -> None:
    """Open the Restore page and set it up for a run (without pressing Run)."""
    page.goto(url + "/Restore")
    page.get_by_role("button", name="▶ Run", exact=True).wait_for()
    set_working_size(page, size)
    if from_the_end:
        start_from_pure_noise_step(page)
    set_steps(page, steps)
    page.get_by_text("where the run starts").wait_for()


def press_run(page) -> float:
    page.get_by_role("button", name="▶ Run", exact=True).click()
    return time.monotonic()


def result_shown(page) -> bool:
    return page.get_by_role("heading", name="The result").count() > 0


def sampling_seconds(page, timeout_ms: float = 15_000) -> float | None:
    """The 'Time' metric of the result (sampling only, as the server measured it)."""
    card = page.locator("[data-testid='stMetric']").filter(
        has=page.locator("[data-testid='stMetricLabel']", has_text=re.compile(r"^Time$")))
    try:
        card.first.wait_for(timeout=timeout_ms)
    except Exception:  # noqa: BLE001 - no result card: nothing to read
        return None
    m = re.search(r"([\d.]+)\s*s", card.first.locator("[data-testid='stMetricValue']").inner_text())
    return float(m.group(1)) if m else None


def run_together(pages, timeout: float = 300.0) -> list[dict]:
    """Press Run in every page, then wait for every result. Per page: ``seconds`` from Run to
    the result on screen (±0.3 s), ``queued`` (seen waiting for a free slot) and
    ``sampling_s`` (the server's own time for the sampling)."""
    started = [press_run(p) for p in pages]
    rows: list[dict] = [{"seconds": None, "queued": False, "sampling_s": None} for _ in pages]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(r["seconds"] is None for r in rows):
        for p, t0, r in zip(pages, started, rows):
            if r["seconds"] is not None:
                continue
            if result_shown(p):
                r["seconds"] = time.monotonic() - t0
            elif p.get_by_text("Waiting: another run is using the model").count():
                r["queued"] = True
        time.sleep(0.3)
    for p, r in zip(pages, rows):  # read once everything is drawn
        if r["seconds"] is not None:
            r["sampling_s"] = sampling_seconds(p)
    return rows


# ---------------------------------------------------------------- the benchmark


def measure(browser, server: LiveServer, sessions: int, size: int, steps: int,
            timeout: float = 600.0) -> dict:
    """One configuration on a running server: returns the figures of one table row."""
    mem0 = server.memory_mb()
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000})
                for _ in range(sessions)]
    try:
        pages = [c.new_page() for c in contexts]
        t_setup = time.monotonic()
        for p in pages:
            p.set_default_timeout(120_000)
            prepare_restore(p, server.url, size, steps)
        setup_s = time.monotonic() - t_setup
        t_all = time.monotonic()
        rows = run_together(pages, timeout)
        all_s = time.monotonic() - t_all
        errors = sum(p.locator(".stException").count() for p in pages)
        finished = sum(r["seconds"] is not None for r in rows)
        complete = sum(all(p.get_by_text(t).count() > 0 for t in (
            f"{steps} of {steps} steps requested",  # the result, all steps run
            "Restored PSNR",  # its metrics
            f"restored ({steps} steps)",  # the final picture's caption
        )) for p in pages)
    finally:
        for c in contexts:
            c.close()
    stats = server.stats()
    mem1 = server.memory_mb()
    times = sorted(r["seconds"] for r in rows if r["seconds"] is not None)
    samp = [r["sampling_s"] for r in rows if r["sampling_s"] is not None]
    return {
        "sessions": sessions, "size": size, "steps": steps, "finished": finished,
        "complete": complete, "exceptions": errors, "setup_s": setup_s, "all_s": all_s,
        "fastest_s": times[0] if times else None,
        "median_s": statistics.median(times) if times else None,
        "slowest_s": times[-1] if times else None,
        "sampling_median_s": statistics.median(samp) if samp else None,
        "queued": sum(r["queued"] for r in rows), "model_loads": stats.get("model_loads", 0),
        "rss_before_mb": mem0.get("rss"), "rss_after_mb": mem1.get("rss"),
        "peak_mb": mem1.get("hwm"), "rows": rows,
    }


def _f(v, fmt: str = "{:.1f}") -> str:
    return "–" if v is None else fmt.format(v)


def table(results: list[dict]) -> str:
    head = ("| sessions | size (px) | steps | finished | Run → result: fastest / median / "
            "slowest (s) | all done (s) | sampling, median (s) | queued | model loads | "
            "server RSS before → after (MB) | server peak (MB) |")
    lines = [head, "|" + "---|" * 11]
    for r in results:
        lines.append(
            f"| {r['sessions']} | {r['size']} | {r['steps']} | {r['finished']}/{r['sessions']} "
            f"| {_f(r['fastest_s'])} / {_f(r['median_s'])} / {_f(r['slowest_s'])} "
            f"| {_f(r['all_s'])} | {_f(r['sampling_median_s'], '{:.2f}')} | {r['queued']} "
            f"| {r['model_loads']} | {_f(r['rss_before_mb'], '{:.0f}')} → "
            f"{_f(r['rss_after_mb'], '{:.0f}')} | {_f(r['peak_mb'], '{:.0f}')} |")
    return "\n".join(lines)


def parse_config(text: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)x(\d+)", text.strip())
    if not m:
        raise argparse.ArgumentTypeError("use SESSIONSxSIZExSTEPS, e.g. 4x128x3")
    sessions, size, steps = (int(g) for g in m.groups())
    if size not in SIZES or not 1 <= sessions <= 32 or not 1 <= steps <= 1000:
        raise argparse.ArgumentTypeError(f"size in {SIZES}, 1-32 sessions, 1-1000 steps")
    return sessions, size, steps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.load_bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", action="append", type=parse_config,
                    help="SESSIONSxSIZExSTEPS (repeatable); default 4x128x3 and 8x256x10")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    configs = a.config or [(4, 128, 3), (8, 256, 10)]
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        print("Debian chromium is needed (make chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for sessions, size, steps in configs:
                with tempfile.TemporaryDirectory() as tmp:
                    env = {"DIFFUSION_LAB_USER_MODELS": str(Path(tmp) / "user_models")}
                    with live_server(Path(tmp), env) as server:
                        print(f"{sessions} sessions × {size} px × {steps} steps …", flush=True)
                        r = measure(browser, server, sessions, size, steps)
                results.append(r)
                print(table([r]).splitlines()[-1], flush=True)
        finally:
            browser.close()
    try:
        load = "load average {:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg())
    except OSError:
        load = "load average unknown"
    text = (
        "# Load: several visitors restoring at once\n\n"
        "`python -m bench.load_bench` (bench/load_bench.py): one fresh `streamlit run` per "
        "row, N separate browser contexts (Chromium) on the Restore page, Run pressed in all, "
        "then every result awaited. Default sample (astronaut, 512×512) at the given working "
        "size, DDIM from the default noise step (σ = 25/255). At most "
        f"{os.environ.get('DIFFUSION_LAB_MAX_RUNS', '2')} runs go at once; the others queue. "
        "Memory is the whole server process (VmRSS / VmHWM).\n\n"
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {load} at the end; "
        f"{time.strftime('%Y-%m-%d %H:%M')}.\n\n" + table(results) + "\n"
    )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    print(f"\nwrote {a.out}")
    bad = [r for r in results if r["finished"] < r["sessions"] or r["exceptions"]]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
