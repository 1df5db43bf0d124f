"""Create in the visitor's browser, measured (`python -m bench --only web`).

Usage (from the repository root; needs Debian chromium, the npm files of web/ (`make run`
installs them) and, for the class part, nginx)::

    .venv/bin/python bench/web.py                       # every part
    .venv/bin/python bench/web.py --parts speed knob    # some parts
    .venv/bin/python bench/web.py --quick --out /tmp/web  # a smoke run

Parts:

* ``speed``: 16 samples x 20 steps with guidance (a class asked for, w = 3) on the static
  site's Create page in headless Chromium, onnxruntime-web WASM on one thread per Web Worker,
  the shipped batch-2 ONNX file (16 calls per step, 32 for Heun): seconds per grid, per step
  and per model call, for DPM-Solver++ (2M: the page's default), DDIM and Heun, with one
  worker and with the page's default (one per core, up to 4), median of 3 runs after a
  warm-up. Beside it, for scale, the same file in onnxruntime for Python (1 thread) and the
  torch model (1 thread), per batch-2 call.
* ``knob``: the guidance knob on the static site's Create page, from its release (the input's
  change event) to the first frame of the new run on screen, while a run is going and after
  one finished (median of 5 each).
* ``class``: 16 Chromium sessions press Create in browser mode through the proxy
  (deploy/local.py: 2 replicas behind nginx): every grid completes, and the replicas' CPU per
  visitor, for opening the page (the app, the model and the runtime files) and for the runs.

Writes ``bench/results/web.md`` and ``web.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.live_server import free_port, stop_process  # noqa: E402
from diffusion_core.maths.samplers import SPECS  # noqa: E402

APP_DIR = ROOT / "web" / "app"
DEFAULT_OUT = ROOT / "bench" / "results" / "web"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
MODEL = "mnist"
IDLE_WINDOW_S = 10.0  # class part: the replicas' CPU with every page open and idle
GRID_N, STEPS, GUIDANCE, LABEL = 16, 20, 3.0, 7


# ---------------------------------------------------------------- helpers (tests use them too)


@contextmanager
def static_server(directory: Path, timeout: float = 30.0) -> Iterator[str]:
    """``python -m http.server`` on a free loopback port serving ``directory``; its URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "-b", "127.0.0.1",
                             "-d", str(directory)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url + "/", timeout=2):
                    break
            except Exception:  # noqa: BLE001 - not up yet
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"python -m http.server did not start at {url}") from None
                time.sleep(0.2)
        yield url
    finally:
        stop_process(proc)


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


#: In a page served from web/app: start worker.js, load a model, then do each run in turn.
#: Runs may carry injected noise (start: one flat list, noise: a list of flat lists).
WORKER_JS = """async ([name, runs]) => {
  const json = await (await fetch(`models/${name}/model.json`)).json();
  const w = new Worker("worker.js", {type: "module"});
  let handler = null;
  w.onmessage = (e) => handler && handler(e.data);
  const next = (want) => new Promise((res, rej) => {
    const frames = [];
    handler = (m) => {
      if (m.type === "frame") frames.push({i: m.i, sigma: m.sigma, t: performance.now()});
      if (m.type === "error") rej(new Error(m.message));
      if (want.includes(m.type)) res({...m, frames});
    };
  });
  const t0 = performance.now();
  const ready = next(["ready"]);
  w.postMessage({type: "load", model: `models/${name}/`, json});
  const r = await ready;
  const out = {ready: {msPerCall: r.msPerCall, loadMs: performance.now() - t0, ort: r.ort}, runs: []};
  let id = 0;
  for (const run of runs) {
    const msg = {type: "run", id: ++id, sweep: [], eta: 0, first: 0, count: run.n, ...run};
    if (run.start) msg.start = Float32Array.from(run.start);
    if (run.noise) msg.noise = run.noise.map((a) => Float32Array.from(a));
    const done = next(["done"]);
    const t1 = performance.now();
    w.postMessage(msg);
    const d = await done;
    out.runs.push({ms: d.ms, wall: performance.now() - t1, calls: d.calls, msPerCall: d.msPerCall,
                   steps: d.frames.length, firstFrameMs: d.frames.length ? d.frames[0].t - t1 : null,
                   final: run.keep === false ? null : Array.from(d.final)});
  }
  w.terminate();
  return out;
}"""


def worker_runs(page, url: str, model: str, runs: list[dict]) -> dict:
    """Open ``url`` (web/app served statically) and do ``runs`` in a fresh worker."""
    page.goto(url + "/index.html")
    return page.evaluate(WORKER_JS, [model, runs])


# ---------------------------------------------------------------- speed


def python_call_ms(model: str, reps: int = 50) -> dict:
    """One batch-2 call of the shipped ONNX file in onnxruntime for Python and of the torch
    model, one thread each, in ms (for scale beside the browser's)."""
    import numpy as np
    import torch

    from diffusion_core.browser.export import MODELS_DIR, ONNX_FILE, read_export
    from diffusion_core.models.registry import load_denoiser

    side = read_export(model)["size"]
    x = np.zeros((2, 1, side, side), np.float32)
    feeds = {"x": x, "sigma": np.array([1.0, 1.0], np.float32), "label": np.array([LABEL, -1])}
    out = {}
    try:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(str(MODELS_DIR / model / ONNX_FILE), opts,
                                    providers=["CPUExecutionProvider"])
        for _ in range(5):
            sess.run(None, feeds)
        t0 = time.perf_counter()
        for _ in range(reps):
            sess.run(None, feeds)
        out["onnxruntime_python_ms"] = (time.perf_counter() - t0) / reps * 1000
    except ImportError:
        out["onnxruntime_python_ms"] = None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        den = load_denoiser(model, "cpu")
        xt, s, lab = torch.from_numpy(x), torch.tensor([1.0, 1.0]), torch.tensor([LABEL, -1])
        with torch.no_grad():
            for _ in range(5):
                den(xt, s, lab)
            t0 = time.perf_counter()
            for _ in range(reps):
                den(xt, s, lab)
        out["torch_ms"] = (time.perf_counter() - t0) / reps * 1000
    finally:
        torch.set_num_threads(threads)
    return out


GRID_DONE = "['sweeping', 'done'].includes(document.querySelector('.dl-create').dataset.state)"


def page_runs(page, url: str, sampler: str, workers: int, reps: int) -> dict:
    """On the site's Create page (Digits, a 7, w = 3): ``reps`` grids after a warm-up one,
    each timed by the page from the press to the finished grid on screen."""
    q = f"?model={MODEL}&what={LABEL}&guidance={GUIDANCE:g}&steps={STEPS}&sampler={sampler}"
    page.goto(url + "/index.html" + q + (f"&workers={workers}" if workers else ""))
    button = page.locator(".dl-create button.dl-primary:not([disabled])")
    button.wait_for(timeout=120_000)
    root = page.locator(".dl-create")
    runs = []
    for _ in range(reps + 1):
        before = root.get_attribute("data-run")
        button.click()
        page.wait_for_function(f"document.querySelector('.dl-create').dataset.run !== '{before}'"
                               f" && {GRID_DONE}", timeout=600_000)
        runs.append({"ms": float(root.get_attribute("data-ms")),
                     "first_frame_ms": float(root.get_attribute("data-first-frame-ms"))})
    return {"runs": runs[1:], "workers": int(root.get_attribute("data-workers"))}


def bench_speed(browser, quick: bool, site: Path) -> dict:
    reps = 1 if quick else 3
    rows = []
    with static_server(site) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            for sampler in ("dpmpp_2m", "ddim", "heun"):  # the page's default first
                for workers in (1, 0):  # one worker, then the page's default (one per core)
                    res = page_runs(page, url, sampler, workers, reps)
                    runs = res["runs"]
                    ms = statistics.median(r["ms"] for r in runs)
                    calls = GRID_N * SPECS[sampler].model_calls(STEPS)
                    rows.append({"sampler": sampler, "workers": res["workers"], "samples": GRID_N,
                                 "steps": STEPS, "calls": calls, "seconds": ms / 1000,
                                 "ms_per_step": ms / STEPS,
                                 "ms_per_call": ms * res["workers"] / calls,
                                 "first_frame_ms": statistics.median(r["first_frame_ms"] for r in runs),
                                 "runs_s": [round(r["ms"] / 1000, 3) for r in runs]})
                    print(f"speed {sampler}, {res['workers']} worker(s): {ms / 1000:.2f} s per "
                          f"16 x {STEPS} steps", flush=True)
        finally:
            page.close()
    return {"rows": rows, "python": python_call_ms(MODEL), "goal_s": 2.0,
            "cores": os.cpu_count()}


# ---------------------------------------------------------------- knob

#: On the site's Create page, with a run of `id` going or done: set the guidance slider to `w`,
#: fire its change event (what a release does) and resolve with the ms until the first frame
#: of the new run is on screen (the page counts frames in data-frames, per run in data-run).
KNOB_JS = """async (w) => {
  const root = document.querySelector(".dl-create");
  const knob = root.querySelector("input[aria-label='Guidance']");
  const before = root.dataset.run;
  return await new Promise((res) => {
    const obs = new MutationObserver(() => {
      if (root.dataset.run !== before && Number(root.dataset.frames || 0) >= 1) {
        requestAnimationFrame(() => { obs.disconnect(); res(performance.now() - t0); });
      }
    });
    obs.observe(root, {attributes: true});
    knob.value = String(w);
    const t0 = performance.now();
    knob.dispatchEvent(new Event("change"));
  });
}"""


def bench_knob(browser, quick: bool, site: Path) -> dict:
    reps = 2 if quick else 5
    out: dict = {"mid_run_ms": [], "after_run_ms": []}
    with static_server(site) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(url + "/index.html")
            page.locator(".dl-create button.dl-primary:not([disabled])").wait_for(timeout=120_000)
            page.locator("button.dl-world[data-model='mnist']").click()
            page.locator(".dl-create button.dl-primary:not([disabled])").wait_for(timeout=120_000)
            page.locator(".dl-class[aria-label='7']").click()  # asks for a 7: a run starts
            ws = [2.0, 4.0, 3.0, 5.0, 2.5, 3.5]
            for k in range(reps):
                page.wait_for_function("Number(document.querySelector('.dl-create').dataset.frames) >= 3")
                out["mid_run_ms"].append(page.evaluate(KNOB_JS, ws[k % len(ws)]))
            for k in range(reps):
                page.wait_for_function("document.querySelector('.dl-create').dataset.state === 'done'",
                                       timeout=600_000)
                out["after_run_ms"].append(page.evaluate(KNOB_JS, ws[(k + 1) % len(ws)]))
        finally:
            page.close()
    for key in ("mid_run_ms", "after_run_ms"):
        out[key.replace("_ms", "_median_ms")] = statistics.median(out[key])
    out["goal_ms"] = 300
    print(f"knob: mid-run {out['mid_run_median_ms']:.0f} ms, after a run "
          f"{out['after_run_median_ms']:.0f} ms", flush=True)
    return out


# ---------------------------------------------------------------- class


#: a class's laptops each have their own cores; here the sessions share this machine's, so each
#: page is told it has one (one Web Worker each) instead of the machine's count
ONE_CORE_JS = "Object.defineProperty(navigator, 'hardwareConcurrency', {get: () => 1});"


def bench_class(browser_factory, sessions: int, timeout: float) -> dict:
    """SESSIONS browser contexts open Create through the proxy one after the other (a page
    loading the runtime while 15 others do would, on this one machine, wait its turn for
    the cores, unlike a class of laptops), each waits for browser mode; then all press
    Create together and wait for every grid. The replicas' CPU before, idle and after."""
    from bench.class_bench import cpu_seconds, tree_cpu_seconds
    from deploy.local import find_nginx, local_class, make_plan

    if find_nginx() is None:
        return {"skipped": "nginx is missing (make class installs it)"}
    plan = make_plan(2, None, None)
    modes: dict[str, int] = {"browser": 0, "server": 0}
    with tempfile.TemporaryDirectory() as tmp:
        env = {"DIFFUSION_LAB_USER_MODELS": str(Path(tmp) / "user_models")}
        with local_class(Path(tmp) / "class", plan, env=env) as top:
            browser = browser_factory()
            cpu = lambda: [cpu_seconds(s.pid) for s in top.replicas]  # noqa: E731
            idle, nginx0 = cpu(), tree_cpu_seconds(top.nginx.pid)
            contexts = [browser.new_context(viewport={"width": 1400, "height": 1000})
                        for _ in range(sessions)]
            for c in contexts:
                c.add_init_script(ONE_CORE_JS)
            try:
                pages = [c.new_page() for c in contexts]
                t0 = time.monotonic()
                frames = []
                for p in pages:
                    p.set_default_timeout(int(timeout * 1000))
                    p.goto(top.url + "/Create")
                    p.get_by_text("Drawing on this computer").or_(
                        p.get_by_text("Drawing on the server")).first.wait_for(timeout=180_000)
                    if p.get_by_text("Drawing on this computer").count():
                        modes["browser"] += 1
                        f = p.frame_locator("iframe[title*='create_browser']")
                        f.locator(".dl-create button.dl-primary:not([disabled])").wait_for()
                        frames.append(f)
                    else:
                        modes["server"] += 1
                setup_s = time.monotonic() - t0
                time.sleep(5)  # the pages' last reruns after "ready" settle
                # the replicas' CPU with every page open and nothing running, for scale
                quiet0, tq = cpu(), time.monotonic()
                time.sleep(IDLE_WINDOW_S)
                quiet1 = cpu()
                idle_rate = sum(b - a for a, b in zip(quiet0, quiet1)) / (time.monotonic() - tq)
                ready = cpu()
                t1 = time.monotonic()
                for f in frames:
                    f.locator(".dl-class[aria-label='Sneaker']").click()
                done = 0
                for f in frames:
                    f.locator(".dl-create[data-state='sweeping'], "
                              ".dl-create[data-state='done']").first.wait_for()
                    done += 1
                run_s = time.monotonic() - t1
                end = cpu()
                complete = sum(f.locator("canvas.dl-final").count() == 1 for f in frames)
                failed = sum(p.locator(".stException").count() for p in pages)
            finally:
                for c in contexts:
                    c.close()
                browser.close()
            nginx_cpu = tree_cpu_seconds(top.nginx.pid) - nginx0
    setup_cpu = sum(q - i for q, i in zip(quiet0, idle))
    run_cpu = sum(e - r for e, r in zip(end, ready))
    return {"sessions": sessions, "plan": plan.describe(), "grids_done": done,
            "grids_complete": complete, "exceptions": failed, "setup_s": setup_s,
            "run_s": run_s, "cpu_setup_s": setup_cpu, "cpu_run_s": run_cpu,
            "cpu_setup_per_visitor_s": setup_cpu / sessions,
            "cpu_run_per_visitor_s": run_cpu / sessions, "nginx_cpu_s": nginx_cpu,
            "idle_cpu_per_s": idle_rate, "idle_window_s": IDLE_WINDOW_S,
            "cpu_run_minus_idle_per_visitor_s": (run_cpu - idle_rate * run_s) / sessions,
            "replica_cpu_s": [round(e - i, 2) for e, i in zip(end, idle)],
            "modes": modes, "ok": done == complete == sessions and not failed}


# ---------------------------------------------------------------- report


def report(res: dict) -> str:
    lines = ["# Create in the browser", "",
             "`python bench/web.py` (bench/web.py): headless Chromium (Debian), onnxruntime-web "
             f"{res.get('ort', '?')} WASM on one thread (no cross-origin isolation), the shipped "
             f"batch-2 ONNX file of `{MODEL}` (28x28). Machine: {res['machine']}, shared with "
             "other work at times: each part says the load it was measured under.", ""]
    if "speed" in res:
        sp = res["speed"]
        lines += ["## 16 samples x 20 steps with guidance, in the browser", "",
                  f"The static site's Create page asking for a {LABEL} at w = {GUIDANCE:g}, "
                  "timed by the page from the press to the finished grid on screen: every step "
                  "makes each picture's two guesses in one batch-2 call (16 calls per step; Heun "
                  "32, its last step 16), split over the page's Web Workers (each one "
                  "single-threaded WASM runtime; the page starts one per core, up to 4: "
                  f"{sp['cores']} here). Goal: at most {sp['goal_s']:g} s. Median of the runs "
                  "after a warm-up. " + _when(sp), "",
                  "| sampler | Web Workers | model calls | seconds per run | ms per step "
                  "| ms per call (per worker) | first frame (ms) | runs (s) |",
                  "|---|---:|---:|---:|---:|---:|---:|---|"]
        for r in sp["rows"]:
            lines.append(f"| {r['sampler']} | {r['workers']} | {r['calls']} | {r['seconds']:.2f} "
                         f"| {r['ms_per_step']:.0f} | {r['ms_per_call']:.2f} "
                         f"| {r['first_frame_ms']:.0f} | {', '.join(f'{v:.2f}' for v in r['runs_s'])} |")
        py = sp["python"]
        lines += ["", "One batch-2 call of the same model elsewhere on this machine, one thread: "
                  f"onnxruntime for Python {py['onnxruntime_python_ms'] or float('nan'):.2f} ms, "
                  f"torch {py['torch_ms']:.2f} ms.", ""]
    if "knob" in res:
        k = res["knob"]
        lines += ["## The guidance knob: release to the first new frame", "",
                  f"The static site's Create page (Digits, a 7, Heun, 20 steps). Goal: at most "
                  f"{k['goal_ms']} ms. " + _when(k), "",
                  "| when | median (ms) | each (ms) |", "|---|---:|---|",
                  f"| while a run is going | {k['mid_run_median_ms']:.0f} | "
                  f"{', '.join(f'{v:.0f}' for v in k['mid_run_ms'])} |",
                  f"| after a run | {k['after_run_median_ms']:.0f} | "
                  f"{', '.join(f'{v:.0f}' for v in k['after_run_ms'])} |", ""]
    if "class" in res:
        c = res["class"]
        lines += ["## A class pressing Create in browser mode through the proxy", ""]
        if "skipped" in c:
            lines += [f"Skipped: {c['skipped']}.", ""]
        else:
            lines += [f"{c['sessions']} Chromium contexts on this machine, through nginx "
                      f"({c['plan']}); they open Create one after the other and wait for "
                      "browser mode (each page told it has one core: one Web Worker, since the "
                      "16 share this machine's 2), then all ask for a sneaker at once and wait "
                      "for their grids (the run: press to the finished grid; the sweep runs on "
                      "in the browser). The browsers' own CPU (each visitor's laptop in a "
                      "class) is not counted. " + _when(c), "",
                      f"**{'PASS' if c['ok'] else 'FAIL'}**: sessions in browser mode "
                      f"{c['modes']['browser']}/{c['sessions']} (fell back to the server: "
                      f"{c['modes']['server']}), grids done {c['grids_done']}/{c['sessions']}, "
                      f"complete {c['grids_complete']}/{c['sessions']}, exceptions "
                      f"{c['exceptions']}.", "",
                      "| | seconds | replicas' CPU (s) | per visitor (CPU-s) |", "|---|---:|---:|---:|",
                      f"| opening the page (app, model, runtime files) | {c['setup_s']:.0f} | "
                      f"{c['cpu_setup_s']:.2f} | {c['cpu_setup_per_visitor_s']:.3f} |",
                      f"| the runs (press to every grid) | {c['run_s']:.0f} | {c['cpu_run_s']:.2f} | "
                      f"{c['cpu_run_per_visitor_s']:.3f} |", "",
                      f"With every page open and nothing running the replicas together use "
                      f"{c['idle_cpu_per_s'] * 1000:.1f} ms of CPU per second ({c['idle_window_s']:.0f} s "
                      "measured before the press): over the runs' time that is "
                      f"{c['idle_cpu_per_s'] * c['run_s']:.2f} CPU-s, so the runs themselves cost "
                      + (f"{c['cpu_run_minus_idle_per_visitor_s']:.3f} CPU-s per visitor beyond "
                         "an open page." if c['cpu_run_minus_idle_per_visitor_s'] >= 0 else
                         "nothing measurable beyond an open page "
                         f"({c['cpu_run_minus_idle_per_visitor_s']:.3f} CPU-s per visitor: "
                         "within the idle noise)."), "",
                      f"nginx: {c['nginx_cpu_s']:.2f} CPU-s; per replica (whole test): "
                      f"{', '.join(map(str, c['replica_cpu_s']))} CPU-s.", ""]
    return "\n".join(lines)


def measured(part) -> dict:
    """Run one part; its result notes when, and the load average before and after."""
    def load() -> str:
        try:
            return "{:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg())
        except OSError:
            return "unknown"

    before, when = load(), time.strftime("%Y-%m-%d %H:%M")
    out = part()
    out["measured"] = {"when": when, "load_before": before, "load_after": load()}
    return out


def _when(part: dict) -> str:
    m = part.get("measured") or {}
    return (f"Measured {m.get('when', '?')}; load average (1 / 5 / 15 min) {m.get('load_before', '?')} "
            f"before, {m.get('load_after', '?')} after.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/web.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", choices=["speed", "knob", "class"],
                    default=["speed", "knob", "class"])
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions and 4 sessions")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="path without suffix: writes .md and .json")
    ap.add_argument("--merge", action="store_true",
                    help="keep the parts not measured now from the .json already at --out")
    a = ap.parse_args(argv)
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        print("Debian chromium is needed (make chromium)", file=sys.stderr)
        return 2
    from diffusion_core.browser.create import runtime_problem, runtime_version

    if runtime_problem():
        print(runtime_problem() + " (cd web && npm ci)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    from diffusion_core.browser.site import export_site

    res: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
                 "ort": runtime_version()}
    old = a.out.with_suffix(".json")
    if a.merge and old.exists():
        res.update({k: v for k, v in json.loads(old.read_text()).items()
                    if k in ("speed", "knob", "class") and k not in a.parts})
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as tmp:
        browser = launch_chromium(pw)
        try:
            site = export_site(Path(tmp) / "site").root
            if "speed" in a.parts:
                res["speed"] = measured(lambda: bench_speed(browser, a.quick, site))
            if "knob" in a.parts:
                res["knob"] = measured(lambda: bench_knob(browser, a.quick, site))
        finally:
            browser.close()
        if "class" in a.parts:
            res["class"] = measured(lambda: bench_class(
                lambda: launch_chromium(pw), 4 if a.quick else a.sessions, a.timeout))
    text = report(res)
    print("\n" + text)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".md").write_text(text)
    a.out.with_suffix(".json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    print(f"wrote {a.out.with_suffix('.md')} and .json")
    ok = res.get("class", {}).get("ok", True) is not False
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
