"""App benchmark: what a visitor waits for.

Usage (from the repository root)::

    .venv/bin/python bench/app_bench.py            # everything
    .venv/bin/python bench/app_bench.py --quick    # fewer moves, one step at 2048x2048

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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: bench/app_bench.py
    sys.path.insert(0, str(ROOT))
from diffusion_core.system.cpuinfo import cpu_model  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PARTS = ["server", "browser", "model", "big"]
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


# ---------------------------------------------------------------------------- markdown


def markdown(d: dict) -> str:
    out = ["# App benchmark", "",
           f"{d['date']}, CPU **{d['cpu']}** ({d['cpu_count']} cores), Python {d['python']}. "
           "Written by `bench/app_bench.py`"
           + (" (quick)" if d.get("quick") else "") + ". Load average (1/5/15 min) next to each "
           "number: the machine was shared with other work, so timings are inflated.", "",
           "| measurement | result | load average |", "|---|---|---|"]

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
    if d.get("errors"):
        out += ["", "Errors: " + "; ".join(d["errors"])]
    return "\n".join(out)


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
    ap.add_argument("--out", default=str(RESULTS / "app"))
    ap.add_argument("--only", nargs="+", choices=PARTS,
                    help="run only these parts; the others' earlier results are kept")
    a = ap.parse_args(argv)
    if a.quick:
        a.moves, a.reruns, a.big_steps, a.no_untiled = 15, 5, 1, True
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
