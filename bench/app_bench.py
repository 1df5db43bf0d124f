"""App benchmark: what a visitor waits for.

Usage (from the repository root)::

    .venv/bin/python bench/app_bench.py            # everything
    .venv/bin/python bench/app_bench.py --quick    # fewer moves, one step at 2048x2048, 2 visits
    .venv/bin/python bench/app_bench.py --only pages toy2d   # the page budgets (issue 21)

* **cold start**: ``streamlit run app.py`` until ``/_stcore/health`` answers, and until a
  real browser shows the home page;
* **model load**: ``registry.load_denoiser`` in a fresh process (with and without the
  checksum check);
* **big picture**: peak resident memory (``ru_maxrss``) of a fresh process that restores a
  2048x2048 picture with the tiled denoiser (``maybe_tiled``) and a few steps, and of one
  untiled call for comparison;
* **slider to paint** on the Add-noise page in Chromium (Playwright, Debian chromium as in
  tests/conftest.py): the in-browser scrubber (set the range input ``#t`` inside the iframe,
  dispatch ``input``, time with ``performance.now()`` until the canvas is painted) against a
  server round trip (move the "Noise step" slider below it and time until the new picture
  is on screen).
* **page budgets** (``--only pages``): a warm server (bench/live_server.py; every page opened
  once first, not counted), then each page (home and the seven pages) opened ``--repeats``
  times, each time in a fresh browser context (a new session, empty browser cache). The time
  runs from the start of navigation to the page's **first full render**, polled every 25 ms:
  (1) Streamlit's script run is over (``[data-testid=stApp]`` has
  ``data-test-script-state="notRunning"`` and the status widget's running icon is gone);
  (2) nothing is still loading in the main area: no skeleton, every ``<img>`` decoded
  (``complete`` and ``naturalWidth > 0``), every Plotly chart has drawn its SVG and every
  Vega-Lite chart its canvas; (3) the
  page's key elements are visible (:data:`PAGE_KEYS`: the home animation, the Add-noise
  scrubber with its canvas painted inside its iframe, Restore's Run button and the original
  picture, ...). Median and maximum of the repeats against the 3 s budget (issue 21);
* **Why diffusion? Train** (``--only toy2d``): the page at its defaults in a fresh context,
  Train pressed, until the results table and the final panels are drawn (and the script run
  is over), against 30 s; beside it, the same comparison run as a job with nobody watching
  (a fresh process), to show what watching costs.

Timing runs should hold the shared lock: ``flock /tmp/bench.lock .venv/bin/python
bench/app_bench.py --only pages toy2d``.

Writes ``bench/results/app.md`` and ``app.json`` with the load average next to every number.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: bench/app_bench.py
    sys.path.insert(0, str(ROOT))
from bench.live_server import live_server  # noqa: E402
from diffusion_core.system.cpuinfo import cpu_model  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PARTS = ["server", "browser", "model", "big", "pages", "toy2d"]
PAGE_BUDGET_S, TRAIN_BUDGET_S = 3.0, 30.0
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


def now() -> str:
    return dt.datetime.now().isoformat(timespec="seconds")


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env() -> dict:
    user = Path(tempfile.mkdtemp(prefix="bench_user_models_"))
    return dict(os.environ, PYTHONPATH=str(ROOT), DIFFUSION_LAB_USER_MODELS=str(user))


# ---------------------------------------------------------------------------- server


class Server:
    """``streamlit run app.py`` on a free loopback port, timed from launch to healthy."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="streamlit_", suffix=".log", delete=False)
        cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
               "--server.port", str(self.port), "--server.address", "127.0.0.1",
               "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env(), stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.healthy_s = self._wait_healthy()

    def _wait_healthy(self, timeout: float = 180.0) -> float:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited ({self.proc.returncode}); see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        return time.perf_counter() - self.t0
            except Exception:  # noqa: BLE001 - still starting
                pass
            time.sleep(0.05)
        raise TimeoutError(f"streamlit did not become healthy at {self.url}")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ---------------------------------------------------------------------------- subprocesses

_LOAD_CHILD = r"""
import json, time
t0 = time.perf_counter()
import torch  # noqa: F401
from diffusion_core.models import registry
t1 = time.perf_counter()
info = registry.find_model("natural")
t2 = time.perf_counter()
registry.load_denoiser(info, verify=True)
t3 = time.perf_counter()
registry.load_denoiser(info, verify=False)
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "find_s": t2 - t1, "load_verified_s": t3 - t2,
                  "load_unverified_s": t4 - t3}))
"""

_BIG_CHILD = r"""
import json, resource, sys, time, torch
from diffusion_core.maths.forward import step_for_sigma
from diffusion_core.media.samples import load_sample
from diffusion_core.models.registry import load_denoiser
from diffusion_core.tasks.restore import restore
from diffusion_core.maths.schedules import make_schedule
from diffusion_core.tasks.tiling import maybe_tiled
from diffusion_core.units import sigma_from_255
size, steps, tiled = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
den = load_denoiser("natural")
x = load_sample("astronaut", max_side=None, mode="rgb").tensor
x = torch.nn.functional.interpolate(x[None], size=(size, size), mode="bicubic",
                                    align_corners=False)[0].clamp(-1, 1)
d = maybe_tiled(den, size, size) if tiled else den
sched = make_schedule("linear", 1000)
step = step_for_sigma(sched, sigma_from_255(25))
def reset_peak():
    try:  # Linux >= 4.0: restart the high-water mark (VmHWM) from the current size
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
# ru_maxrss is the process's peak so far; after a reset of the high-water mark it only
# counts from the reset, so the whole-process peak is the largest of the readings below
peaks = [rss()]
load_peak, base = status("VmHWM"), status("VmRSS")
reset = reset_peak()
t0 = time.perf_counter()
res = restore(d, x, sched, step, steps, sampler="ddim", seed=0, keep_frames=False,
              compute_metrics=False)
seconds = time.perf_counter() - t0
peaks.append(rss())
sampling_adds = status("VmHWM") - base if reset else None
base2 = status("VmRSS")
reset_peak()
from diffusion_core.tasks.metrics import psnr, ssim
noisy = res.start * (1 + float(sched.sigmas[step - 1]) ** 2) ** 0.5
scores = {"psnr": psnr(res.final, x), "ssim": ssim(res.final, x), "noisy_psnr": psnr(noisy, x)}
peaks.append(rss())
metrics_adds = status("VmHWM") - base2 if reset else None
print(json.dumps({"size": size, "steps": res.steps_run, "tiled": tiled,
                  "wrapper": type(d).__name__, "load_peak_mb": load_peak, "baseline_mb": base,
                  "peak_mb": max(peaks), "sampling_adds_mb": sampling_adds,
                  "metrics_adds_mb": metrics_adds, "seconds": seconds, **scores}))
"""


def child(code: str, *args: str, timeout: float = 3600) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env(),
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        tail = (out.stderr or "").strip().splitlines()
        return {"error": tail[-1] if tail else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- browser

SCRUB_JS = """
async ({k}) => {
  const s = document.getElementById('t');
  const c = document.getElementById('xt');
  const g = c.getContext('2d');
  const before = g.getImageData(c.width >> 1, c.height >> 1, 1, 1).data.join(',');
  const t0 = performance.now();
  s.value = k;
  s.dispatchEvent(new Event('input', {bubbles: true}));
  const t1 = performance.now();                       // render() has drawn into the canvas
  await new Promise(r => requestAnimationFrame(r));   // the frame that shows it starts
  const t2 = performance.now();
  await new Promise(r => { const ch = new MessageChannel(); ch.port1.onmessage = r;
                           ch.port2.postMessage(0); });  // right after that frame's paint
  const t3 = performance.now();
  await new Promise(r => requestAnimationFrame(r));   // the next frame: surely painted
  const t4 = performance.now();
  const after = g.getImageData(c.width >> 1, c.height >> 1, 1, 1).data.join(',');
  return {handler: t1 - t0, raf: t2 - t0, painted: t3 - t0, next_frame: t4 - t0,
          k: document.body.dataset.k, changed: before !== after};
}
"""

RERUN_ARM_JS = """
() => { window.__t0 = null;
  document.addEventListener('keydown', () => { if (window.__t0 === null)
    window.__t0 = performance.now(); }, {capture: true, once: true}); }
"""

RERUN_DONE_JS = """
(want) => {
  for (const cap of document.querySelectorAll('[data-testid="stImageCaption"]')) {
    if (cap.textContent.trim() === want) {
      const img = cap.parentElement && cap.parentElement.querySelector('img');
      if (img && img.complete && img.naturalWidth > 0 && window.__t0 !== null)
        return performance.now() - window.__t0;
    }
  }
  return false;
}
"""


def scrubber_frame(page):
    for _ in range(240):
        for fr in page.frames:
            try:
                if fr.query_selector("body[data-ready='1'] #t"):
                    return fr
            except Exception:  # noqa: BLE001 - frame being replaced
                pass
        page.wait_for_timeout(250)
    raise TimeoutError("the scrubber did not become ready")


def browser_bench(url: str, moves: int, reruns: int) -> dict:
    from playwright.sync_api import sync_playwright

    out: dict = {}
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        ctx = b.new_context(viewport={"width": 1400, "height": 1000})
        page = ctx.new_page()
        page.set_default_timeout(120_000)
        t0 = time.perf_counter()
        page.goto(url)
        page.get_by_text("Diffusion Lab").first.wait_for()
        out["home_first_paint_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        page.goto(url + "/Add_noise")
        frame = scrubber_frame(page)
        out["add_noise_ready_s"] = time.perf_counter() - t0
        size = frame.evaluate("() => [document.getElementById('xt').width, "
                              "document.getElementById('xt').height]")
        out["scrubber_size"] = size
        page.wait_for_timeout(1000)
        # ---- in-browser scrubber: ~30 moves to far-apart steps
        samples = []
        ks = [(97 * i + 31) % 999 + 1 for i in range(moves + 3)]
        for i, k in enumerate(ks):
            r = frame.evaluate(SCRUB_JS, {"k": k})
            if i >= 3:  # the first few warm the JIT up
                samples.append(r)
            page.wait_for_timeout(60)
        out["scrub"] = {"n": len(samples),
                        "all_changed": all(s["changed"] for s in samples),
                        "all_labelled": all(str(s["k"]) == str(k) for s, k in zip(samples, ks[3:]))}
        for key in ("handler", "raf", "painted", "next_frame"):
            vals = [s[key] for s in samples]
            out["scrub"][key] = {"median_ms": statistics.median(vals), "min_ms": min(vals),
                                 "max_ms": max(vals)}
        # ---- server round trip: the "Noise step" st.slider under the scrubber
        thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Noise step") \
            .locator('input[type="range"]')  # react-aria's (visually hidden) range input
        thumb.evaluate("e => e.closest('[data-testid=\"stSlider\"]').scrollIntoView()")
        page.wait_for_timeout(500)
        times = []
        for i in range(reruns + 1):
            now = int(thumb.evaluate("e => e.value"))
            value, key = (now + 1, "ArrowRight") if now < 999 else (now - 1, "ArrowLeft")
            page.evaluate(RERUN_ARM_JS)
            thumb.focus()
            thumb.press(key)
            h = page.wait_for_function(RERUN_DONE_JS, arg=f"x at step {value}", polling="raf",
                                       timeout=120_000)
            if i > 0:  # the first one warms the caches up
                times.append(float(h.json_value()))
            page.wait_for_timeout(300)
        out["rerun"] = {"n": len(times), "median_ms": statistics.median(times),
                        "min_ms": min(times), "max_ms": max(times)}
        ctx.close()
        b.close()
    return out


# ---------------------------------------------------------------------------- page budgets

#: The generic half of "first full render": the script run is over and nothing in the main
#: area is still loading (pictures decoded, Plotly and Vega-Lite charts drawn). Returns
#: false, or 1 + the number of pictures and charts it checked.
RENDERED_JS = """
() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (document.querySelector('[data-testid="stStatusWidgetRunningIcon"]')) return false;
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main || main.querySelector('[data-testid="stSkeleton"]')) return false;
  const imgs = [...main.querySelectorAll('img')];
  if (imgs.some(i => !i.complete || i.naturalWidth === 0)) return false;
  const charts = [...main.querySelectorAll('[data-testid="stPlotlyChart"]')];
  if (charts.some(c => !c.querySelector('.main-svg'))) return false;
  const vegas = [...main.querySelectorAll('[data-testid="stVegaLiteChart"]')];
  if (vegas.some(c => !c.querySelector('canvas, svg.marks'))) return false;
  return 1 + imgs.length + charts.length + vegas.length;
}
"""

#: Page-specific half: ``(url path, JS predicate of the key elements, scrubber iframe?)``.
#: ``seen(sel, text)``: an element matching ``sel`` (whose text starts with ``text``) is
#: visible; ``pic(caption)``: a decoded picture whose caption contains ``caption``.
KEY_HELPERS = """
const vis = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
const seen = (sel, text) => [...document.querySelectorAll(sel)].some(
  e => vis(e) && (!text || e.textContent.trim().startsWith(text)));
const pic = (caption) => [...document.querySelectorAll('[data-testid="stImage"]')].some(f => {
  const img = f.querySelector('img');
  const cap = f.parentElement.querySelector('[data-testid="stImageCaption"]')
    || f.querySelector('[data-testid="stImageCaption"]');
  return img && vis(img) && img.complete && img.naturalWidth > 0
    && (!caption || (cap && cap.textContent.includes(caption)));
});
const button = text => seen('[data-testid^="stBaseButton"]', text);
"""
PAGE_KEYS: dict[str, tuple[str, str, bool]] = {
    "Home": ("", "[...document.querySelectorAll('[data-testid=\"stImage\"] img')].some("
                 "i => vis(i) && i.complete && i.naturalWidth > 0 && i.src.endsWith('.gif'))",
             False),
    "Add noise": ("/Add_noise", "pic('x at step') && seen('iframe')", True),
    "Restore": ("/Restore", "button('▶ Run') && pic(': the original')", False),
    "Repair": ("/Repair", "button('Repair (') && pic('The damaged picture')", False),
    "Train": ("/Train", "button('▶ Start') && pic('Some of the')", False),
    "Create": ("/Create", "button('▶ Create')", False),
    "Why diffusion?": ("/Why_diffusion", "button('Train') && seen('[data-testid=\"stAlert\"]', "
                                         "'Pick a dataset')", False),
    "Cost of steps": ("/Cost_of_steps", "button('▶ Measure')", False),
}
SCRUBBER_READY = "body[data-ready='1'] #t"


def _scrubber_painted(page) -> bool:
    """The Add-noise scrubber's iframe has set itself up and painted its canvas."""
    for fr in page.frames[1:]:
        try:
            if fr.evaluate("() => { const c = document.getElementById('xt');"
                           " return !!(document.querySelector(\"" + SCRUBBER_READY + "\") && c"
                           " && c.width > 0); }"):
                return True
        except Exception:  # noqa: BLE001 - a frame being replaced or not loaded yet
            pass
    return False


def page_render_s(browser, url: str, name: str, timeout: float = 120.0) -> dict:
    """One fresh visit (new context: new session, empty cache) to page ``name``: seconds from
    the start of navigation to its first full render (see the module docstring)."""
    path, key_js, scrubber = PAGE_KEYS[name]
    key_fn = "() => {" + KEY_HELPERS + "return !!(" + key_js + "); }"
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)[:200]))
    try:
        t0 = time.perf_counter()
        page.goto(url + path, wait_until="commit")
        deadline = t0 + timeout
        while True:
            checked = page.evaluate(RENDERED_JS)
            if checked and page.evaluate(key_fn) and (not scrubber or _scrubber_painted(page)):
                seconds = time.perf_counter() - t0
                break
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{name}: no full render in {timeout:.0f} s")
            page.wait_for_timeout(25)
        exc = page.locator('[data-testid="stException"]').count()
        return {"seconds": seconds, "checked": checked, "exceptions": exc, "js_errors": errors}
    finally:
        ctx.close()


@contextmanager
def app_and_browser():
    """A private ``streamlit run app.py`` (bench/live_server.py, its own user-model folder)
    and a headless Chromium: ``(server, browser)``."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="app_bench_") as tmp, \
            live_server(Path(tmp), {"DIFFUSION_LAB_USER_MODELS": str(Path(tmp) / "models")}) as srv, \
            sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield srv, b
        finally:
            b.close()


def pages_bench(repeats: int) -> dict:
    """Every page, ``repeats`` fresh visits each, on one warm server."""
    out: dict = {"repeats": repeats, "budget_s": PAGE_BUDGET_S, "pages": {}}
    with app_and_browser() as (srv, b):
        warm = {name: page_render_s(b, srv.url, name)["seconds"] for name in PAGE_KEYS}
        out["warm_up_s"] = warm  # the first visit of each page (imports, caches): not counted
        print(json.dumps({"warm_up_s": {k: round(v, 2) for k, v in warm.items()}}), flush=True)
        out["load"] = load()
        for name in PAGE_KEYS:
            runs = [page_render_s(b, srv.url, name) for _ in range(repeats)]
            secs = [r["seconds"] for r in runs]
            row = {"median_s": statistics.median(secs), "max_s": max(secs), "all_s": secs,
                   "exceptions": sum(r["exceptions"] for r in runs),
                   "js_errors": sorted({e for r in runs for e in r["js_errors"]}),
                   "load": load()}
            row["met"] = row["median_s"] <= PAGE_BUDGET_S and not row["exceptions"]
            out["pages"][name] = row
            print(json.dumps({name: {k: row[k] for k in ("median_s", "max_s", "met", "load")}}),
                  flush=True)
        out["load_after"] = load()
    return out


# ---------------------------------------------------------------------------- Why diffusion? Train

#: Train pressed at the defaults: the results are on screen (heading, table, final charts)
#: and the script run is over.
TOY2D_DONE_JS = """
() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const heads = [...document.querySelectorAll('h3')].some(
    h => h.textContent.trim().startsWith('Results on'));
  const table = document.querySelector('[data-testid="stDataFrame"]');
  const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
  return heads && !!table && table.getBoundingClientRect().height > 0 && charts.length >= 6
    && charts.every(c => c.querySelector('.main-svg'));
}
"""

_TOY2D_JOB_CHILD = r"""
import json, time
t0 = time.perf_counter()
from diffusion_core import toy2d
from diffusion_core.app.toy2d import CompareRequest
req = CompareRequest.from_form({"toy2d_dataset": toy2d.DATASETS["ring"]})
warm = CompareRequest.from_form({"toy2d_dataset": toy2d.DATASETS["ring"], "toy2d_steps": 20})
warm.compare_job().start().wait(600)  # first use of the optimisers etc., as in a warm server
t1 = time.perf_counter()
job = req.compare_job().start()
job.wait(600)
t2 = time.perf_counter()
res = job.result["results"]
# the seed-0 row of bench/results/toy2d_seeds.json (ring), to compare the page's run with
table = json.load(open("bench/results/toy2d_seeds.json"))
ring = next(st["runs"] for st in table["studies"] if st["dataset"] == "ring")
row = {r["model"]: r for r in ring if r["seed"] == req.seed}
same = {k: (m.modes_covered, round(m.high_quality_share, 4), round(m.energy_distance, 4))
        == (row[k]["modes_covered"], round(row[k]["high_quality_share"], 4),
            round(row[k]["energy_distance"], 4)) for k, m in job.result["metrics"].items() if k in row}
print(json.dumps({"import_s": t1 - t0, "job_s": t2 - t1, "state": job.state,
                  "train_s": {k: r.train_seconds for k, r in res.items()},
                  "steps": req.budget.steps, "kinds": list(req.kinds), "seed": req.seed,
                  "same_as_seeds_table": same}))
"""


def toy2d_bench(repeats: int) -> dict:
    """Why diffusion? at its defaults: Train pressed to results shown, ``repeats`` times,
    each in a fresh context; and the same job with nobody watching (a fresh process)."""
    out: dict = {"budget_s": TRAIN_BUDGET_S, "runs": []}
    la = load()
    out["job_alone"] = child(_TOY2D_JOB_CHILD)
    out["job_alone"]["load"] = la
    print(json.dumps({"job_alone": out["job_alone"]}), flush=True)
    with app_and_browser() as (srv, b):
        page_render_s(b, srv.url, "Why diffusion?")  # warm the server up
        for _ in range(repeats):
            la = load()
            ctx = b.new_context(viewport={"width": 1400, "height": 1000})
            page = ctx.new_page()
            page.set_default_timeout(300_000)
            page.goto(srv.url + "/Why_diffusion")
            page.get_by_role("button", name="Train", exact=True).wait_for()
            page.wait_for_function(RENDERED_JS)
            t0 = time.perf_counter()
            page.get_by_role("button", name="Train", exact=True).click()
            marks = {}  # when the first live chart, and the results' heading, showed
            while not page.evaluate(TOY2D_DONE_JS):
                now_s = time.perf_counter() - t0
                if now_s > 300:
                    raise TimeoutError("Why diffusion?: no results in 300 s")
                if "first_live_s" not in marks and page.evaluate(
                        "() => !!document.querySelector('.main-svg')"):
                    marks["first_live_s"] = now_s
                if "heading_s" not in marks and page.get_by_text("Results on").count():
                    marks["heading_s"] = now_s
                page.wait_for_timeout(50)
            seconds = time.perf_counter() - t0
            captions = page.locator('[data-testid="stCaptionContainer"]').all_inner_texts()
            per_model = [c for c in captions if " steps, " in c and c.endswith(" s")]
            out["runs"].append({"seconds": seconds, **marks, "per_model": per_model,
                                "load": la})
            print(json.dumps(out["runs"][-1]), flush=True)
            ctx.close()
    secs = [r["seconds"] for r in out["runs"]]
    out.update(median_s=statistics.median(secs), max_s=max(secs), load_after=load())
    out["met"] = out["median_s"] <= TRAIN_BUDGET_S
    return out


# ---------------------------------------------------------------------------- markdown


def markdown(d: dict) -> str:
    out = ["# App benchmark", "",
           f"Last written {d['date']}, CPU **{d['cpu']}** ({d['cpu_count']} cores), Python "
           f"{d['python']}. "
           "Written by `bench/app_bench.py`"
           + (" (quick)" if d.get("quick") else "") + ". Load average (1/5/15 min) next to each "
           "number: the machine was shared with other work, so timings are inflated.", ""]
    when = {name: d[key].get("date") if isinstance(d.get(key), dict) else d[key][0].get("date")
            for name, key in (("server", "cold_start"), ("browser", "browser"),
                              ("model", "model_load"), ("big", "big"), ("pages", "pages"),
                              ("toy2d", "toy2d")) if d.get(key)}
    if len(set(when.values())) > 1:  # a run with --only keeps the other parts' rows
        out += ["When each part was measured (`--only` reruns some and keeps the others): "
                + ", ".join(f"{k} {v or '(not recorded)'}"
                            for k, v in when.items()) + ".", ""]
    out += ["| measurement | result | load average |", "|---|---|---|"]

    def row(name, value, la):
        out.append(f"| {name} | {value} | {' / '.join(map(str, la))} |")

    cs = d.get("cold_start", {})
    if "healthy_s" in cs:
        row("cold start: `streamlit run app.py` to healthy (`/_stcore/health`)",
            f"{cs['healthy_s']:.2f} s", cs["load"])
    br = d.get("browser", {})
    if "home_first_paint_s" in br:
        row("first visit: home page shown in Chromium (server already up)",
            f"{br['home_first_paint_s']:.2f} s", br["load"])
        row("Add-noise page until the scrubber is ready", f"{br['add_noise_ready_s']:.2f} s",
            br["load"])
    ml = d.get("model_load", {})
    if "load_verified_s" in ml:
        row("model load: `registry.load_denoiser` with the sha256 check (fresh process)",
            f"{ml['load_verified_s']:.2f} s", ml["load"])
        row("model load without the check", f"{ml['load_unverified_s']:.2f} s", ml["load"])
        row("imports (torch + diffusion_core.models.registry)", f"{ml['import_s']:.2f} s", ml["load"])
    elif "error" in ml:
        row("model load", f"failed: {ml['error']}", ml.get("load", []))
    for big in d.get("big", []):
        what = (f"restore {big.get('size', '?')}x{big.get('size', '?')}, "
                + ("tiled (`maybe_tiled`)" if big.get("tiled") else "untiled")
                + f", {big.get('steps', '?')} DDIM step(s): peak resident memory")
        if "error" in big:
            row(what, f"failed: {big['error']}", big.get("load", []))
        else:
            adds, madds = big.get("sampling_adds_mb"), big.get("metrics_adds_mb")
            row(what, f"**{big['peak_mb']:.0f} MB** (`ru_maxrss` of the whole process; model "
                      f"and picture loaded: {big['baseline_mb']:.0f} MB"
                + (f"; the sampling adds {adds:.0f} MB at its peak, PSNR + SSIM of the result "
                   f"{madds:.0f} MB" if adds is not None and madds is not None else "")
                + f"; sampling {big['seconds']:.0f} s; PSNR {big['noisy_psnr']:.2f} → "
                  f"{big['psnr']:.2f} dB)", big["load"])
    if "scrub" in br:
        s = br["scrub"]
        w, h = br["scrubber_size"]
        row(f"Add-noise scrubber ({w}x{h}), slider move to painted canvas, median of {s['n']}",
            f"{s['painted']['median_ms']:.1f} ms (min {s['painted']['min_ms']:.1f}, max "
            f"{s['painted']['max_ms']:.1f}; drawing alone {s['handler']['median_ms']:.1f} ms; "
            f"next frame {s['next_frame']['median_ms']:.1f} ms)", br["load"])
        row("  … every move changed the canvas and its label", "yes" if s["all_changed"]
            and s["all_labelled"] else "no", br["load"])
    if "rerun" in br:
        r = br["rerun"]
        row(f"'Noise step' st.slider (server round trip), key press to new picture, median of "
            f"{r['n']}", f"{r['median_ms']:.0f} ms (min {r['min_ms']:.0f}, max {r['max_ms']:.0f})",
            br["load"])
    out += pages_markdown(d)
    if d.get("errors"):
        out += ["", "Errors: " + "; ".join(d["errors"])]
    return "\n".join(out)


def pages_markdown(d: dict) -> list[str]:
    out: list[str] = []
    pg = d.get("pages")
    if pg and pg.get("pages"):
        out += ["", f"## Page budgets: first full render, {pg['repeats']} fresh visits per page", "",
                f"{pg.get('date', '')}. A warm server (every page opened once before, not "
                "counted), each visit in a new browser context (a new session). Timed from the "
                "start of navigation until the script run is over, every picture is decoded, "
                "every chart is drawn and the page's key elements are visible (see "
                "`bench/app_bench.py`: `RENDERED_JS`, `PAGE_KEYS`; on Add noise: the scrubber's "
                "canvas painted in its iframe). First visits (warm-up): "
                + ", ".join(f"{k} {v:.2f} s" for k, v in pg.get("warm_up_s", {}).items()) + ".",
                "", "| page | median | max | budget | met? | load average |",
                "|---|---|---|---|---|---|"]
        for name, r in pg["pages"].items():
            out.append(f"| {name} | {r['median_s']:.2f} s | {r['max_s']:.2f} s | "
                       f"{pg['budget_s']:.0f} s | {'yes' if r['met'] else '**no**'}"
                       + (f" ({r['exceptions']} exception(s) shown)" if r["exceptions"] else "")
                       + f" | {' / '.join(map(str, r['load']))} |")
    ty = d.get("toy2d")
    if ty and ty.get("runs"):
        alone = ty.get("job_alone", {})
        out += ["", "## Why diffusion? Train at its defaults", "",
                f"{ty.get('date', '')}. Train pressed on the page at its defaults (ring, "
                f"{alone.get('steps', '?')} steps, {', '.join(alone.get('kinds', []))}) in a "
                "fresh browser context, until the results table and the final charts are drawn.",
                "", "| measurement | median | max | budget | met? | load average |",
                "|---|---|---|---|---|---|"]
        secs = [r["seconds"] for r in ty["runs"]]
        out.append(f"| Train to results shown, {len(secs)} runs ({', '.join(f'{v:.1f}' for v in secs)} s) "
                   f"| {ty['median_s']:.1f} s | {ty['max_s']:.1f} s | {ty['budget_s']:.0f} s | "
                   f"{'yes' if ty['met'] else '**no**'} | {' / '.join(map(str, ty['runs'][0]['load']))} |")
        if "job_s" in alone:
            train = ", ".join(f"{k} {v:.1f} s" for k, v in alone["train_s"].items())
            out.append(f"| the same comparison as a job, nobody watching (fresh process; "
                       f"training alone: {train}) | {alone['job_s']:.1f} s | | | | "
                       f"{' / '.join(map(str, alone['load']))} |")
        last = ty["runs"][-1].get("per_model")
        if last:
            kinds = alone.get("kinds") or [""] * len(last)
            out += ["", "Per model on the page (last run): "
                    + "; ".join(f"{k} {v}" for k, v in zip(kinds, last)) + "."]
        same = alone.get("same_as_seeds_table")
        if same:
            out += ["", f"The page's run (seed {alone.get('seed', 0)}) scores exactly as that seed's "
                    "row of bench/results/toy2d_seeds.md (modes, high-quality share, energy "
                    "distance): " + ", ".join(f"{k} {'yes' if v else '**no**'}"
                                              for k, v in same.items()) + "."]
    return out


# ---------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--moves", type=int, default=30)
    ap.add_argument("--reruns", type=int, default=15)
    ap.add_argument("--big-size", type=int, default=2048)
    ap.add_argument("--big-steps", type=int, default=2)
    ap.add_argument("--no-untiled", action="store_true",
                    help="skip the untiled comparison call at the big size")
    ap.add_argument("--repeats", type=int, default=5,
                    help="fresh visits per page (pages) and Train presses (toy2d)")
    ap.add_argument("--out", default=str(RESULTS / "app"))
    ap.add_argument("--only", nargs="+", choices=PARTS,
                    help="run only these parts; the others' earlier results are kept")
    a = ap.parse_args(argv)
    if a.quick:
        a.moves, a.reruns, a.big_steps, a.no_untiled = 15, 5, 1, True
        a.repeats = min(a.repeats, 2)
    parts = a.only or PARTS
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    d: dict = {}
    if a.only and out.with_suffix(".json").exists():
        try:
            d = json.loads(out.with_suffix(".json").read_text())
        except (OSError, ValueError):
            d = {}
    d.update({"date": dt.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_model(),
              "cpu_count": os.cpu_count(), "python": platform.python_version(),
              "quick": a.quick, "errors": []})

    if "server" in parts or "browser" in parts:
        server_parts(d, parts, a)
        save(out, d)
    if "model" in parts:
        la = load()
        d["model_load"] = child(_LOAD_CHILD)
        d["model_load"]["load"] = la
        d["model_load"]["date"] = now()
        print(json.dumps(d["model_load"]), flush=True)
        save(out, d)
    if "big" in parts:
        d["big"] = []
        configs = [(a.big_size, a.big_steps, True)] + ([] if a.no_untiled
                                                         else [(a.big_size, 1, False)])
        for size, steps, tiled in configs:
            la = load()
            r = child(_BIG_CHILD, str(size), str(steps), "1" if tiled else "0")
            r.setdefault("size", size)
            r.setdefault("tiled", tiled)
            r.setdefault("steps", steps)
            r["load"], r["date"] = la, now()
            d["big"].append(r)
            print(json.dumps(r), flush=True)
            save(out, d)
    for part, fn in (("pages", pages_bench), ("toy2d", toy2d_bench)):
        if part not in parts:
            continue
        if not Path(CHROMIUM).exists():
            d["errors"].append(f"{part}: {CHROMIUM} not found")
            continue
        try:
            d[part] = fn(a.repeats)
            d[part]["date"] = now()
        except Exception as e:  # noqa: BLE001 - report and go on with the rest
            d["errors"].append(f"{part}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
            print(d["errors"][-1], flush=True)
        save(out, d)
    print()
    print(markdown(d))
    return 0


def save(out: Path, d: dict) -> None:
    out.with_suffix(".json").write_text(json.dumps(d, indent=1))
    out.with_suffix(".md").write_text(markdown(d) + "\n")


def server_parts(d: dict, parts, a) -> None:
    la = load()
    srv = Server()
    if "server" in parts:
        d["cold_start"] = {"healthy_s": srv.healthy_s, "load": la, "date": now()}
        print(json.dumps(d["cold_start"]), flush=True)
    if "browser" not in parts:
        srv.close()
        return
    try:
        if Path(CHROMIUM).exists():
            la = load()
            try:
                d["browser"] = browser_bench(srv.url, a.moves, a.reruns)
                d["browser"]["load"] = la
                d["browser"]["date"] = now()
                d["browser"]["load_after"] = load()
                print(json.dumps(d["browser"]), flush=True)
            except Exception as e:  # noqa: BLE001 - report and go on with the rest
                d["errors"].append(f"browser: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
                print(d["errors"][-1], flush=True)
        else:
            d["errors"].append(f"browser: {CHROMIUM} not found")
    finally:
        srv.close()


if __name__ == "__main__":
    raise SystemExit(main())
