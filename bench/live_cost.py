"""What watching a run costs: the Restore page's default run live in Chromium against the same
restore on the command line, back to back.

Usage (from the repository root; needs Debian chromium, as the browser tests do)::

    flock /tmp/bench.lock .venv/bin/python -m bench.live_cost --label after
    flock /tmp/bench.lock .venv/bin/python -m bench.live_cost --label after --threads 1 \\
        --capability avx2

Per configuration (torch threads x CPU kernels) it starts a fresh ``streamlit run app.py``
(bench/live_server.py) and, after one warm-up run that loads the model, repeats:

* **page**: a fresh browser session opens the Restore page with its defaults (the astronaut
  sample at 256 px, the natural model, DDIM, 25 steps from the typical noise step, seed 0),
  presses Run and waits until the result (its heading and the restored picture) is on screen;
* **CLI**: at once after it, ``python -m diffusion_core restore`` with the same picture, model,
  schedule, start step, sampler, steps, size and seed (its own process, no server running a
  job meanwhile).

Reported per configuration (medians over the repetitions): page time (Run -> result on
screen), the page's own sampling time (its "Time" card), the CLI's sampling time (the same
``restore`` call, as the CLI prints it) and the CLI process's wall time (start -> exit: Python,
torch import and model load included); CPU seconds of the server and of the browser during a
page run; live-view reruns seen (image fetches). Both restores must give the same PSNR (same
run). The main ratio is page time / CLI sampling time: what watching adds to the work itself.

Threads: ``--threads N`` sets ``DIFFUSION_LAB_TORCH_THREADS`` (the app's override) and
``OMP_NUM_THREADS`` (what torch reads at start) for the server and the CLI alike; ``auto``
sets neither (the app's thread plan; the CLI takes every core). ``--capability avx2`` sets
``ATEN_CPU_CAPABILITY=avx2`` for both, so torch runs its AVX2 kernels: a stand-in for an
AVX2-only laptop CPU, emulated on this one (same cores and clock, no AVX-512 kernels).

Results accumulate in ``bench/results/live_cost.json`` under ``--label`` (e.g. before /
after) and the table in ``live_cost.md`` is rewritten from all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.live_server import LiveServer, live_server  # noqa: E402
from bench.load_bench import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    SIZE_SLIDER,
    sampling_seconds,
    set_working_size,
)
from diffusion_core.system.cpuinfo import cpu_model  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DEFAULT_OUT = RESULTS / "live_cost"
#: CPU kernels: this CPU's own; ATen's AVX2 kernels (the issue's proxy for an AVX2-only CPU: it
#: does not reach oneDNN, which runs this model's convolutions); AVX2 for oneDNN and MKL too
CAPABILITIES = {"default": {}, "avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
                "avx2-onednn": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                                "MKL_ENABLE_INSTRUCTIONS": "AVX2"}}
CAPABILITY_WORDS = {"avx2": "AVX2 (emulated: ATEN_CPU_CAPABILITY=avx2)",
                    "avx2-onednn": "AVX2 (emulated: ATen + ONEDNN_MAX_CPU_ISA=AVX2)"}
TICK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- the page's defaults


def page_defaults() -> dict:
    """What a fresh Restore page runs: its sample, size, model, schedule, start and sampler."""
    from diffusion_core.app.models import photo_models
    from diffusion_core.app.restore import DEFAULT_SAMPLER, DEFAULT_STEPS, typical_step
    from diffusion_core.maths.schedules import T_DEFAULT, make_schedule
    from diffusion_core.media.samples import list_samples, sample_path

    sample = list_samples()[0]
    return {"image": str(sample_path(sample)), "sample": sample, "size": 256,
            "model": photo_models()[0].name, "schedule": "linear", "T": T_DEFAULT,
            "t": typical_step(make_schedule("linear", T_DEFAULT)), "sampler": DEFAULT_SAMPLER,
            "steps": DEFAULT_STEPS, "seed": 0}


def env_for(threads: str, capability: str) -> dict[str, str]:
    env: dict[str, str] = {}
    if threads != "auto":
        env |= {"DIFFUSION_LAB_TORCH_THREADS": threads, "OMP_NUM_THREADS": threads}
    return env | CAPABILITIES[capability]


# ---------------------------------------------------------------- CPU time of processes


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds so far) for every process we can read."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(d.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK)
    return out


def _subtree(table, root: int) -> set[int]:
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    seen, todo = set(), [root]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo += kids.get(p, [])
    return seen


def cpu_split(server_pid: int) -> dict[str, float]:
    """CPU seconds so far of the server's process tree and of everything else this bench
    started (the Playwright driver and Chromium). Dead processes drop out, so only compare
    readings taken while the same browser and server live."""
    table = _proc_table()
    mine = _subtree(table, os.getpid()) - {os.getpid()}
    server = _subtree(table, server_pid)
    return {"server": sum(table[p][1] for p in server if p in table),
            "browser": sum(table[p][1] for p in mine - server if p in table)}


# ---------------------------------------------------------------- one page run, one CLI run


def metric_value(page, label: str) -> str | None:
    card = page.locator("[data-testid='stMetric']").filter(
        has=page.locator("[data-testid='stMetricLabel']", has_text=re.compile(f"^{label}$")))
    if card.count() == 0:
        return None
    return card.first.locator("[data-testid='stMetricValue']").inner_text()


def shown_when(condition: str) -> str:
    """A page function ``([arg, timeoutMs]) => Promise`` that resolves once the JavaScript
    ``condition`` (it may use ``arg``) holds, checked at every change of the page (a
    MutationObserver, no polling), and rejects after ``timeoutMs``."""
    return """([arg, timeoutMs]) => new Promise((resolve, reject) => {
  const shown = () => (CONDITION);
  if (shown()) return resolve(true);
  const watcher = new MutationObserver(() => {
    if (shown()) { watcher.disconnect(); clearTimeout(timer); resolve(true); }
  });
  const timer = setTimeout(() => { watcher.disconnect(); reject(new Error('not shown')); },
                           timeoutMs);
  watcher.observe(document.body, {childList: true, subtree: true, characterData: true});
})""".replace("CONDITION", condition)


# the result: its heading and the restored picture's caption (arg)
RESULT_SHOWN = shown_when(
    "[...document.querySelectorAll('h2')].some(h => h.textContent.startsWith('The result'))"
    " && [...document.querySelectorAll('[data-testid=\"stImageCaption\"]')].some("
    "c => c.textContent.includes(arg))")


def page_settings(page) -> dict:
    """The working size, noise step and steps the Restore page shows (its defaults)."""
    return {"size": int(page.get_by_role("slider", name=SIZE_SLIDER).get_attribute("aria-valuetext")),
            "t": int(page.get_by_role("slider", name="Noise step to start from")
                     .get_attribute("aria-valuetext")),
            "steps": int(page.get_by_role("spinbutton", name="Steps", exact=True).input_value())}


def page_run(browser, server: LiveServer, size: int | None = None,
             timeout_s: float = 300.0) -> dict:
    """A fresh session runs the Restore page's default run; Run -> result on screen."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    media = {"n": 0, "bytes": 0}

    def on_response(r) -> None:
        if "/media/" in r.url:
            media["n"] += 1
            try:
                media["bytes"] += int(r.headers.get("content-length") or 0)
            except ValueError:
                pass

    try:
        page = ctx.new_page()
        page.set_default_timeout(timeout_s * 1000)
        page.goto(server.url + "/Restore")
        page.get_by_role("button", name="▶ Run", exact=True).wait_for()
        page.get_by_text("where the run starts").first.wait_for()
        if size:
            set_working_size(page, size)
            page.get_by_text("where the run starts").first.wait_for()
        page.wait_for_timeout(500)  # let the first render settle
        settings = page_settings(page)
        steps = settings["steps"]
        page.on("response", on_response)
        cpu0 = cpu_split(server.pid)
        t0 = time.monotonic()
        page.get_by_role("button", name="▶ Run", exact=True).click()
        # wait in the page for the DOM to change (no polling: Playwright's own waiting looks
        # at every animation frame, which keeps a software-rendering Chromium busy and slows
        # the very run it times)
        page.evaluate(RESULT_SHOWN, [f"restored ({steps} steps)", timeout_s * 1000])
        seconds = time.monotonic() - t0
        cpu1 = cpu_split(server.pid)
        sampling_seconds(page)  # waits for the number cards
        psnr = metric_value(page, "Restored PSNR")
        device = page.get_by_text(re.compile(r"^Device: ")).all_inner_texts()
        return {"seconds": seconds, "settings": settings, "sampling_s": sampling_seconds(page),
                "psnr": float(psnr.split()[0]) if psnr else None,
                "server_cpu_s": cpu1["server"] - cpu0["server"],
                "browser_cpu_s": cpu1["browser"] - cpu0["browser"],
                "media_fetches": media["n"], "media_kb": media["bytes"] / 1024,
                "exceptions": page.locator(".stException").count(),
                "runs_on": device[0].removeprefix("Device: ") if device else None}
    finally:
        ctx.close()


def cli_run(d: dict, env: dict[str, str], workdir: Path) -> dict:
    """The same restore with ``python -m diffusion_core restore``; wall time and its own."""
    js = workdir / "cli.json"
    cmd = [sys.executable, "-m", "diffusion_core", "restore", d["image"], "--t", str(d["t"]),
           "--sampler", d["sampler"], "--steps", str(d["steps"]), "--seed", str(d["seed"]),
           "--model", d["model"], "--schedule", d["schedule"], "--T", str(d["T"]),
           "--size", str(d["size"]), "--device", "cpu", "--out", str(workdir / "cli.png"),
           "--json", str(js)]
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    t0 = time.monotonic()
    subprocess.run(cmd, cwd=ROOT, env=full_env, check=True, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    summary = json.loads(js.read_text())
    return {"wall_s": wall, "sampling_s": summary["seconds"],
            "psnr": summary["final"].get("psnr"), "command": " ".join(cmd[1:])}


def torch_capability(env: dict[str, str]) -> str:
    code = "import torch; print(torch.backends.cpu.get_cpu_capability(), torch.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, **env),
                         capture_output=True, text=True, check=True).stdout.split()
    return f"{out[0]}, {out[1]} threads at start"


# ---------------------------------------------------------------- one configuration


def measure(browser, threads: str, capability: str, reps: int, d: dict,
            size: int | None = None) -> dict:
    env = env_for(threads, capability)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        server_env = dict(env, DIFFUSION_LAB_USER_MODELS=str(tmp / "user_models"))
        with live_server(tmp, server_env) as server:
            warm = page_run(browser, server, size)  # loads the model
            d = d | warm["settings"]  # the page's own defaults (they may depend on the CPU)
            cli_run(d, env, tmp)  # the model file and torch in the page cache
            for r in range(reps):
                p = page_run(browser, server, size)
                c = cli_run(d, env, tmp)
                rows.append({"page": p, "cli": c, "load": os.getloadavg()[0]})
                print(f"  rep {r + 1}: page {p['seconds']:.2f} s (sampling "
                      f"{p['sampling_s'] or float('nan'):.2f} s) · CLI sampling "
                      f"{c['sampling_s']:.2f} s, wall {c['wall_s']:.2f} s · "
                      f"PSNR {p['psnr']} / {c['psnr']:.2f}", flush=True)
            log = server.log_text()

    def med(side: str, key: str):
        vals = [r[side][key] for r in rows if r[side][key] is not None]
        return statistics.median(vals) if vals else None

    page_s, cli_s = med("page", "seconds"), med("cli", "sampling_s")
    best = (min(r["page"]["seconds"] for r in rows) / min(r["cli"]["sampling_s"] for r in rows)
            if rows else None)
    same = all(r["page"]["psnr"] is not None and abs(r["page"]["psnr"] - r["cli"]["psnr"]) < 0.01
               and r["page"]["settings"] == warm["settings"] for r in rows)
    return {
        "threads": threads, "capability": capability, "torch": torch_capability(env),
        "settings": d, "runs_on": rows[-1]["page"]["runs_on"] if rows else None,
        "reps": reps, "page_s": page_s, "page_sampling_s": med("page", "sampling_s"),
        "cli_sampling_s": cli_s, "cli_wall_s": med("cli", "wall_s"),
        "ratio": page_s / cli_s if page_s and cli_s else None, "ratio_best": best,
        "ratio_wall": page_s / med("cli", "wall_s") if page_s else None,
        "server_cpu_s": med("page", "server_cpu_s"), "browser_cpu_s": med("page", "browser_cpu_s"),
        "media_fetches": med("page", "media_fetches"), "media_kb": med("page", "media_kb"),
        "same_psnr": same, "exceptions": sum(r["page"]["exceptions"] for r in rows),
        "warmup_page_s": warm["seconds"], "load_avg": [round(v, 2) for v in os.getloadavg()],
        "cli_command": rows[0]["cli"]["command"] if rows else "", "rows": rows,
        "server_threads_line": next((ln for ln in log.splitlines() if "thread" in ln.lower()), ""),
        "when": time.strftime("%Y-%m-%d %H:%M"),
    }


# ---------------------------------------------------------------- the table

#: what the profile of a watched run showed, and what changed (the table measures the result)
NOTES = """## Where the time went, and what changed

* **The live view redrew on a clock.** The fragment reran every 0.3 s whether or not a step
  had finished. Each redraw costs Chromium (software rendering) about 0.1 s of CPU here: about
  35 ms for any fragment rerun, 23 ms for the progress bar's animation, 45 ms for the two
  pictures (their size barely matters: 128 px and 384 px cost the same), so watching took a
  third of a core. The server's part was small (a rerun draws in about 20 ms; the GIL was
  held by other threads in few samples, py-spy `--gil`). Now (`ui/job_watch.py`) each
  fragment run draws, then waits in the server without CPU for the job's next news
  (`Job.wait_for_news`): redrawn at most every `every` seconds (1 s on the Restore page),
  at once when the run ends (no polling delay before the result), after 1 s of quiet
  otherwise. The browser's rerun requests (every 0.25 s) queue behind a waiting fragment
  run instead of interrupting it.
* **Torch threads.** A 2-thread run shares 2 cores with the server and the browser: every
  other busy moment stalls its whole OpenMP team. Runs now take their threads from a plan
  (`diffusion_core/system/threads.py`: the cores this process may use, shared by
  `DIFFUSION_LAB_MAX_RUNS` runs, one core left for the page; `DIFFUSION_LAB_TORCH_THREADS`
  or `OMP_NUM_THREADS` force it), set in the run's own thread, shown on screen.
* **An idle OpenMP team slows a run's team.** 25 DDIM steps at 256 px with 2 threads in a
  worker thread: 0.75 s when no other thread had used torch, 1.26-1.37 s once another
  thread owned an (idle) 2-thread team, 0.87-0.95 s in the main thread; no difference with
  1 thread. The page's reruns used to compute with 2 threads and kept such a team alive
  during the run; they now use one (`set_default_threads(1)` from the first `watch`, and
  from any run with several threads).
* **The bench's own waiting.** Playwright's `wait_for` polls on every animation frame,
  which kept Chromium busy and inflated the first *before* figures (2 threads, 256 px: 2.46 s
  page time against 1.79 s measured the quiet way used in every row below).
* **A run on every core is hurt by short bursts of other work** (the *quiet* rows' session,
  2 threads forced, 512 px, 5 repetitions each, medians): the Restore page redrawn every
  1 s took 1.45x the command line; edited for the experiment to redraw only every 100 s
  (none during the run), 1.30x; with that and every CSS animation switched off, 1.27x.
  Without a browser (`python -m bench.thread_noise`, bench/results/thread_noise.md), a
  2-thread restore slows by 16 % next to another process busy 20 ms out of every 100 ms
  and by 11 % next to a Python thread of its own process doing that: whatever takes a core
  for a moment stalls both threads of each parallel step. So a CPU run that takes every
  core is now redrawn every 3 s instead of every second (`Job.redraw_every`,
  `diffusion_core/system/threads.py` `redraw_every`), and the live view says so; with a
  core left for the page nothing changes. The page's own overhead outside the sampling is
  small (the page and the job temporarily instrumented with time stamps, 4 runs; not a
  bench option): Run click to the job's start 0.07-0.12 s; from the last step to the
  result on screen about 0.3 s (the page's script reaches the restored picture 45 ms after
  it starts).
* **Stop.** A click waits for the live view's wait between redraws to end, so with redraws
  every 3 s a Stop took up to 2.65 s to show (median 1.77 s, 2 threads). The wait now
  looks every 0.1 s for a click waiting behind it (`ui/job_watch.py`, `click_waiting`) and
  ends at once: median 0.59 s with 2 threads, 0.47 s with 1 (bench/results/stop_latency.md).
* **What stays.** With a run forced onto both cores the page still pays 15-35 %: the
  2-thread rows at the default 512 px, in three runs of this bench with the code of the
  *quiet* rows (5, 5 and 12 repetitions), came to 1.16x, 1.24x and 1.18x with the default
  kernels and 1.30x, 1.32x and 1.31x with ATen's AVX2 kernels (the table keeps the 12-
  repetition run). Part of it is not the page at all: the same restore as a page job in its
  own thread, with nobody watching, takes about 5 % longer than in the main thread
  (bench/results/thread_noise.md). At 256 px the run is about a second, and the fixed part
  (0.07-0.12 s to start, about 0.3 s to show the result) makes 1.5x. One thread leaves a
  core to the server and the browser and costs 3-16 %; it is what the app picks by itself
  on 2 cores (`auto`). On this CPU one thread is slower in absolute terms than two forced
  (the `auto` rows against the `2` rows), because the lighter live view now leaves the
  second core mostly idle; the issue's laptop measured the opposite under a busy second
  core. A profile of the sampler thread (py-spy, 512 px) shows the per-step PSNR and SSIM of
  the quality chart at about 30 % of its samples, in the page and the command line alike:
  the next candidate for less work.
"""


def _f(v, fmt: str = "{:.2f}") -> str:
    return "–" if v is None else fmt.format(v)


def pair_ratio(r: dict) -> float | None:
    """The median over the repetitions of page time / CLI sampling time, each page run against
    the CLI run right after it (less sensitive than a ratio of medians to a slow spell of
    the machine that hits one side only)."""
    pairs = [x["page"]["seconds"] / x["cli"]["sampling_s"] for x in r.get("rows", [])
             if x["page"].get("seconds") and x["cli"].get("sampling_s")]
    return statistics.median(pairs) if pairs else None


def table(results: list[dict]) -> str:
    head = ("| version | CPU kernels | torch threads | run (px, steps) | the page says "
            "| page: Run → result (s) | page sampling (s) "
            "| CLI sampling (s) | CLI wall (s) | page / CLI sampling, per pair "
            "| page / CLI sampling, medians | best page / best CLI | page / CLI wall "
            "| server / browser CPU (s) | image fetches | same PSNR | load avg |")
    lines = [head, "|" + "---|" * 17]
    for r in results:
        cap = CAPABILITY_WORDS.get(r["capability"], f"default ({r['torch'].split(',')[0]})")
        lines.append(
            f"| {r['label']} | {cap} | {r['threads']} | {r['settings']['size']}, "
            f"{r['settings']['steps']} | {r.get('runs_on') or '–'} | {_f(r['page_s'])} "
            f"| {_f(r['page_sampling_s'])} | {_f(r['cli_sampling_s'])} | {_f(r['cli_wall_s'])} "
            f"| **{_f(pair_ratio(r))}×** | {_f(r['ratio'])}× | {_f(r.get('ratio_best'))}× "
            f"| {_f(r['ratio_wall'])}× "
            f"| {_f(r['server_cpu_s'], '{:.1f}')} / {_f(r['browser_cpu_s'], '{:.1f}')} "
            f"| {_f(r['media_fetches'], '{:.0f}')} | {'yes' if r['same_psnr'] else 'NO'} "
            f"| {r['load_avg'][0]:.2f} |")
    return "\n".join(lines)


def _order(r: dict) -> tuple:
    """Rows by CPU kernels, working size (largest first), threads (2, 1, auto), before/after."""
    caps, threads = list(CAPABILITIES), ["2", "1", "auto"]
    return (caps.index(r["capability"]) if r["capability"] in caps else len(caps),
            -r["settings"]["size"], threads.index(r["threads"]) if r["threads"] in threads else 9,
            r["label"] != "before", r["label"])


def write(out: Path, results: list[dict], d: dict) -> None:
    results = sorted(results, key=_order)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"defaults": d, "results": results}, indent=1))
    cmd = next((r["cli_command"] for r in results if r["label"] != "before"), "")
    cmd = re.sub(r"\S*/site-packages/skimage/data/", "SKIMAGE_DATA/", cmd)  # the sample's file
    cmd = re.sub(r"/tmp/[^/ ]+/", "OUT/", cmd)
    text = (
        "# What watching a run costs: the Restore page live against the command line\n\n"
        "`flock /tmp/bench.lock .venv/bin/python -m bench.live_cost --label L --threads N ... "
        "--capability C ...` (bench/live_cost.py). A fresh `streamlit run` per configuration, "
        "one warm-up run (loads the model), then per repetition, back to back: a fresh Chromium "
        "session presses Run on the Restore page with its defaults (the astronaut sample, model "
        f"{d['model']}, {d['sampler']} from noise step {d['t']} of {d['schedule']} T = {d['T']}, "
        f"seed {d['seed']}; the working size and steps the page shows, column *run*: since the "
        "page picks them for about 10 s on this computer they may differ per version and CPU) "
        "and waits until the result is on screen (a MutationObserver in the page, no polling); "
        "then the same restore on the command line, e.g.\n\n"
        f"    python {cmd}\n\n"
        "Medians of the repetitions. *page / CLI sampling, per pair* is the acceptance ratio "
        "(goal ≤ 1.3×): Run → result on screen against the restore call alone (the time the "
        "CLI prints), each page run against the CLI run right after it, the median of these "
        "ratios (a slow spell of this shared virtual machine then hits both sides of a pair "
        "alike); *medians* divides the two medians instead; *best page / best CLI* compares "
        "the fastest of each; *CLI wall* adds the CLI's Python start, torch import and model "
        "load. Threads: `N` forces `DIFFUSION_LAB_TORCH_THREADS=N` and `OMP_NUM_THREADS=N` on "
        "both sides; `auto` sets nothing: the app's plan (diffusion_core/system/threads.py) "
        "and the CLI's default (every core). *the page says*: the device line of the result. "
        "CPU kernels: `avx2` sets `ATEN_CPU_CAPABILITY=avx2` (the issue's proxy for an "
        "AVX2-only laptop: ATen's own kernels only; oneDNN, which runs this model's "
        "convolutions, keeps AVX-512, so the speed barely changes); `avx2-onednn` caps oneDNN "
        "and MKL at AVX2 too (`ONEDNN_MAX_CPU_ISA=AVX2`, `MKL_ENABLE_INSTRUCTIONS=AVX2`), which "
        "makes a call here about 25× slower (0.6 s at 256², twice the real laptop's 0.3 s): a "
        "slow-CPU stand-in, emulated, not that laptop. Server / browser CPU: CPU seconds of "
        "the server process and of Chromium plus the Playwright driver during one page run. "
        "Image fetches: pictures the browser downloaded during the run (2 per live-view "
        "redraw, plus the result's).\n\n"
        f"Machine: {cpu_model() or platform.processor()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}. Load average (1 min) at the end of each configuration "
        "(the bench itself, a server, a browser and a CLI run, keeps it near 2). The *before* "
        "and *after* rows were measured while other work shared these 2 cores at times; the "
        "*quiet* rows (the current code) with nothing else running.\n\n"
        + table(results) + "\n\n" + NOTES
    )
    out.with_suffix(".md").write_text(text)


def stored_results(out: Path) -> list[dict]:
    """The results kept in ``out``'s JSON file so far (none without it)."""
    stored = out.with_suffix(".json")
    return json.loads(stored.read_text())["results"] if stored.exists() else []


@contextmanager
def chromium_browser():
    """Debian's Chromium, headless, driven by Playwright (closed afterwards)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.live_cost", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label", default="after", help="version label in the table (before/after)")
    ap.add_argument("--threads", nargs="+", default=["2", "1"],
                    help="torch threads per configuration: numbers or auto (default 2 1)")
    ap.add_argument("--capability", nargs="+", default=["default"], choices=list(CAPABILITIES))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--size", type=int, default=None,
                    help="set this working size on the page first (default: the page's own)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results stem (.md, .json)")
    a = ap.parse_args(argv)
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        print("Debian chromium is needed (make chromium)", file=sys.stderr)
        return 2
    d = page_defaults()
    results = stored_results(a.out)
    with chromium_browser() as browser:
        for cap in a.capability:
            for threads in a.threads:
                print(f"{a.label}: {cap} kernels, threads {threads} …", flush=True)
                r = measure(browser, threads, cap, a.reps, d, a.size) | {"label": a.label}
                key = (a.label, cap, threads, r["settings"]["size"])
                results = [x for x in results if (x["label"], x["capability"], x["threads"],
                                                  x["settings"]["size"]) != key] + [r]
                print(table([r]).splitlines()[-1], flush=True)
                write(a.out, results, d)
    print(f"wrote {a.out.with_suffix('.md')}")
    bad = [r for r in results if not r["same_psnr"] or r["exceptions"]]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
