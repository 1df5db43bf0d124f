"""Lesson benchmark: how long the room waits. Scene-to-visual times of the Lesson page in
Chromium against a real server, on a fresh server (the first visit) and on a warm one.

Usage (from the repository root)::

    .venv/bin/python bench/lesson.py              # 5 walks on the warm server
    .venv/bin/python bench/lesson.py --reps 2 --out bench/results/lesson_quick

* **first visit**: a fresh ``streamlit run`` (bench/live_server.py); the lesson opened at
  scene 1, then → pressed scene after scene as soon as each scene is complete. For each scene:
  the seconds from the key press to its first visual (a "getting ready" card counts) and
  to its real visual (the scene's own picture; a live scene's run finished). The warm-up
  computes the scenes in order at the first visit, so a later scene may wait for it (the
  2-D models of scene 7 train for about a minute).
* **warm**: once the warm-up is over, ``--reps`` walks, each in a fresh browser context (a new
  session): the lesson opened at scene 1, → pressed seven times and ← seven times (every
  scene is entered at least ``--reps`` times). The time runs from the key press to the
  scene's visual on screen and the page's script run over (polled every animation frame):
  the picture loaded with the scene's alt text, or the forward scrubber drawn in its frame.
  A live scene (the restore, the drawing) also times its run: from the key press to its
  "Done live" line (it starts by itself). Median and maximum per scene against the budgets:
  visual 1 s, live run 6 s.

Writes ``<out>.md`` and ``<out>.json`` (default bench/results/lesson) with the load average
beside the numbers.
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

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: bench/lesson.py
    sys.path.insert(0, str(ROOT))
from bench.app_bench import CHROMIUM, CHROMIUM_ARGS, load, now  # noqa: E402
from bench.live_server import live_server  # noqa: E402
from diffusion_core.app.lesson import SCENES  # noqa: E402
from diffusion_core.system.cpuinfo import cpu_model  # noqa: E402
from diffusion_core.system.threads import available_cores  # noqa: E402

RESULTS = ROOT / "bench" / "results"
VISUAL_BUDGET_S, LIVE_BUDGET_S = 1.0, 6.0
VIEWPORT = {"width": 1280, "height": 720}
WARM_TIMEOUT_S = 900.0

#: scene ``key``'s visual is on screen (and, ``settled``, the script run is over: a live
#: scene's picture is redrawn by a fragment that reruns while its run goes); ``alt`` (if
#: given) must match (so a "getting ready" card does not count); ``any`` accepts any picture
READY_JS = """
([key, alt, any, settled]) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (settled && (!app || app.getAttribute('data-test-script-state') !== 'notRunning')) {
    return false;
  }
  const box = document.querySelector('.st-key-lesson_visual_' + key);
  if (!box) return false;
  const el = box.querySelector('iframe') || box.querySelector('img');
  if (!el || el.getBoundingClientRect().width <= 0) return false;
  const frame = box.querySelector('iframe');
  if (frame) {
    const doc = frame.contentDocument;
    return !!(doc && doc.body && doc.body.dataset.ready === '1');
  }
  const img = box.querySelector('img');
  if (!img || !img.complete || img.naturalWidth === 0) return false;
  return any || !alt || img.alt === alt;
}
"""
DONE_JS = "(key) => !!document.querySelector('.st-key-lesson_status_done_' + key)"
#: the page's key listener is installed (it is, a few milliseconds after the first render)
KEYS_READY_JS = "() => document.documentElement.dataset.lessonKeys !== undefined"


def _wait(page, js: str, arg, timeout_s: float) -> None:
    try:
        page.wait_for_function(js, arg=arg, timeout=timeout_s * 1000, polling="raf")
    except Exception:
        shot = Path(tempfile.gettempdir()) / "lesson_bench_timeout.png"
        page.screenshot(path=str(shot))
        print(json.dumps({"timeout": arg, "url": page.url, "screenshot": str(shot)}), flush=True)
        raise


def scene_alt(scene) -> str:
    return "" if scene.key == "dissolve" else scene.alt


def status_text(page, key: str) -> str:
    loc = page.locator(".st-key-lesson_status_done_" + key)
    return loc.inner_text().strip() if loc.count() else ""


def enter(page, scene, press: str | None, timeout_s: float = 60.0,
          first_any: bool = False) -> dict:
    """Press ``press`` (or nothing: the page is loading) and time scene ``scene``: to its
    visual, and for a live scene to its finished run."""
    t0 = time.perf_counter()
    if press:
        page.keyboard.press(press)
    row: dict = {"scene": scene.key}
    if first_any:
        _wait(page, READY_JS, [scene.key, "", True, not scene.live], timeout_s)
        row["first_visual_s"] = time.perf_counter() - t0
    _wait(page, READY_JS, [scene.key, scene_alt(scene), False, not scene.live], timeout_s)
    row["visual_s"] = time.perf_counter() - t0
    if scene.live:
        _wait(page, DONE_JS, scene.key, timeout_s)
        row["done_s"] = time.perf_counter() - t0
        row["status"] = status_text(page, scene.key)
    return row


def first_visit(browser, url: str) -> list[dict]:
    """A fresh server: scene 1 opened, then every scene in turn as soon as the last is done."""
    ctx = browser.new_context(viewport=VIEWPORT)
    page = ctx.new_page()
    rows = []
    try:
        t0 = time.perf_counter()
        page.goto(url + "/Lesson?scene=1", wait_until="commit")
        row = enter(page, SCENES[0], None, timeout_s=120, first_any=True)
        row["note"] = "from navigation start"
        rows.append(row)
        _wait(page, KEYS_READY_JS, None, 30)
        for scene in SCENES[1:]:
            rows.append(enter(page, scene, "ArrowRight", timeout_s=WARM_TIMEOUT_S, first_any=True))
        rows[-1]["server_to_all_s"] = time.perf_counter() - t0
    finally:
        ctx.close()
    return rows


def warm_walk(browser, url: str) -> list[dict]:
    """One walk on the warm server in a fresh session: → through every scene, ← back."""
    ctx = browser.new_context(viewport=VIEWPORT)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)[:200]))
    try:
        page.goto(url + "/Lesson?scene=1")
        enter(page, SCENES[0], None, timeout_s=120)
        _wait(page, KEYS_READY_JS, None, 30)
        rows = [dict(enter(page, s, "ArrowRight"), key="→") for s in SCENES[1:]]
        rows += [dict(enter(page, s, "ArrowLeft"), key="←") for s in reversed(SCENES[:-1])]
        exceptions = page.locator('[data-testid="stException"]').count()
        for r in rows:
            r["exceptions"], r["js_errors"] = exceptions, list(errors)
        return rows
    finally:
        ctx.close()


def summarise(walks: list[list[dict]]) -> dict:
    out = {}
    for scene in SCENES:
        rows = [r for walk in walks for r in walk if r["scene"] == scene.key]
        vis = [r["visual_s"] for r in rows]
        entry = {"n": len(vis), "visual_median_s": statistics.median(vis),
                 "visual_max_s": max(vis), "visual_all_s": [round(v, 3) for v in vis]}
        entry["met"] = entry["visual_max_s"] <= VISUAL_BUDGET_S
        if scene.live:
            done = [r["done_s"] for r in rows]
            entry |= {"done_median_s": statistics.median(done), "done_max_s": max(done),
                      "done_all_s": [round(v, 3) for v in done],
                      "status": sorted({r["status"] for r in rows})}
            entry["met"] = entry["met"] and entry["done_max_s"] <= LIVE_BUDGET_S
        out[scene.key] = entry
    return out


def markdown(d: dict) -> str:
    lines = [
        "# Lesson: scene-to-visual times",
        "",
        f"Generated by `bench/lesson.py` on {d['date']}: {d['cpu']}, {d['cores']} cores, "
        f"Chromium at {VIEWPORT['width']}×{VIEWPORT['height']}, {d['reps']} walks on the warm "
        f"server. Load average (1, 5, 15 min) before: {d['load_before']}, after: "
        f"{d['load_after']}{d.get('note', '')}.",
        "",
        "Time from the key press to the scene's visual on screen with the page's script run "
        "over (picture loaded with the scene's alt text, or the scrubber drawn in its frame; "
        "a live scene: its first picture, while its run goes on); "
        f"budget {VISUAL_BUDGET_S:g} s. A live scene (restore, drawing) starts its run by "
        f"itself: *run done* is from the key press to its \"Done live\" line; budget "
        f"{LIVE_BUDGET_S:g} s.",
        "",
        "## Warm server",
        "",
        "| scene | entries | visual median (s) | visual max (s) | run done median (s) "
        "| run done max (s) | met |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for i, scene in enumerate(SCENES):
        e = d["warm"][scene.key]
        done = (f"{e['done_median_s']:.2f} | {e['done_max_s']:.2f}" if scene.live else "– | –")
        lines.append(f"| {i + 1} {scene.short} | {e['n']} | {e['visual_median_s']:.2f} | "
                     f"{e['visual_max_s']:.2f} | {done} | {'yes' if e['met'] else 'NO'} |")
    live = [f"- {s.short}: {st}" for s in SCENES if s.live for st in d["warm"][s.key]["status"]]
    lines += ["", "What the live scenes ran (as their pages said):", "", *sorted(set(live)), ""]
    lines += [
        "## First visit (fresh server)",
        "",
        "The lesson opened on a server that has just started, then → pressed as soon as each "
        "scene was complete. *First visual*: any picture of the scene on screen (a \"getting "
        "ready\" card counts); *ready*: the scene's own visual (a live scene: its run done). "
        "Scene 1 is timed from the start of navigation (the server's first script run).",
        "",
        "| scene | first visual (s) | ready (s) |",
        "|---|---:|---:|",
    ]
    for i, r in enumerate(d["first_visit"]):
        ready = r.get("done_s", r["visual_s"])
        lines.append(f"| {i + 1} {SCENES[i].short} | {r['first_visual_s']:.2f} | {ready:.2f} |")
    lines += ["", f"Every scene ready {d['first_visit'][-1]['server_to_all_s']:.0f} s after "
              "the first page load.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5, help="walks on the warm server")
    ap.add_argument("--out", default=str(RESULTS / "lesson"), help="output path without suffix")
    ap.add_argument("--note", default="", help="a sentence for the results (e.g. what else ran)")
    a = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    d: dict = {"date": now(), "cpu": cpu_model(), "cores": available_cores(),
               "machine": platform.machine(), "reps": a.reps, "load_before": load(),
               "note": f". {a.note}" if a.note else ""}
    with tempfile.TemporaryDirectory(prefix="lesson_bench_") as tmp, \
            live_server(Path(tmp), {"DIFFUSION_LAB_USER_MODELS": str(Path(tmp) / "models")}) as srv, \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            d["first_visit"] = first_visit(browser, srv.url)
            print(json.dumps({"first_visit": d["first_visit"]}), flush=True)
            walks = []
            for k in range(a.reps):
                walks.append(warm_walk(browser, srv.url))
                print(json.dumps({"walk": k + 1, "load": load()}), flush=True)
            d["walks"] = walks
            d["warm"] = summarise(walks)
            d["exceptions"] = sum(r["exceptions"] for w in walks for r in w[:1])
            d["js_errors"] = sorted({e for w in walks for r in w for e in r["js_errors"]})
        finally:
            browser.close()
        d["server_rss_mb"] = srv.memory_mb()
    d["load_after"] = load()
    d["met"] = all(e["met"] for e in d["warm"].values()) and not d["exceptions"]
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(d, indent=1, default=str) + "\n")
    text = markdown(d)
    out.with_suffix(".md").write_text(text)
    print(text)
    print(json.dumps({"met": d["met"]}))
    return 0 if d["met"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    raise SystemExit(main())
