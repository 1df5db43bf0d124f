"""A class on one deployment: browser sessions restoring through nginx over several replicas.

Usage (from the repository root; needs Debian chromium and nginx, ``make class`` installs nginx)::

    .venv/bin/python -m bench.class_bench                    # 16 sessions x 128 px x 5 steps, 2 replicas
    .venv/bin/python -m bench.class_bench --sessions 4 --steps 3 --out /tmp/class.md

It starts the topology of deploy/local.py (the replicas, each told ``DIFFUSION_LAB_MAX_RUNS``
and its PyTorch threads, behind nginx with cookie affinity), opens SESSIONS separate browser
contexts (separate cookie jars, like separate laptops) on the Restore page through the proxy,
presses Run in all of them and waits for every result (bench/load_bench.py's helpers). Then it
checks what a class needs:

* every session's run completed (all steps, its metrics and its final picture on screen);
* no session was dropped: each page opened exactly one websocket, which stayed open until the
  end, and shows no connection error or exception;
* no session moved: in nginx's access log, every affinity key (the cookie) was answered by
  exactly one replica over all its requests, its websocket (status 101) included;

and reports the load per replica: sessions, runs done (the replica's own counters), time per
run, CPU seconds of the replica process (/proc/<pid>/stat) and its memory (resident when idle,
at its peak). From these: the cost per visitor (CPU-seconds and MB per session) used for the
sizing advice in README "Serving a class". Writes ``bench/results/class.md`` and ``.json``
(or ``--out``). Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.load_bench import CHROMIUM, CHROMIUM_ARGS, SIZES, prepare_restore, run_together  # noqa: E402
from deploy.local import AFFINITY_COOKIE, Topology, find_nginx, local_class, make_plan  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results" / "class.md"
LOG_LINE = re.compile(r"key=(?P<key>\S+) upstream=(?P<up>\S*) status=(?P<status>\d+) .*"
                      r'req="(?P<method>\S+) (?P<uri>[^"]*)"')


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return float("nan")
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children now alive (nginx: the master and its workers)."""
    total = cpu_seconds(pid)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            total += cpu_seconds(int(stat.parent.name))
    return total


def read_access_log(path: Path) -> list[dict]:
    """The lines of the ``lab_affinity`` log format (deploy/nginx/affinity.conf)."""
    rows = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return rows
    for line in text.splitlines():
        m = LOG_LINE.search(line)
        if m:
            rows.append(m.groupdict())
    return rows


def routes(rows: list[dict]) -> dict[str, dict]:
    """Per affinity key: the replicas that answered it, its request and websocket counts."""
    out: dict[str, dict] = defaultdict(lambda: {"upstreams": set(), "requests": 0, "websockets": 0,
                                                "media": 0})
    for r in rows:
        k = out[r["key"]]
        # "a, b" when nginx tried two servers; "-" when it answered itself
        for up in r["up"].replace(",", " ").split():
            if up != "-":
                k["upstreams"].add(up)
        k["requests"] += 1
        k["websockets"] += r["status"] == "101"
        k["media"] += r["uri"].startswith("/media/")
    return out


def run_complete(page, steps: int) -> bool:
    """The result of a run with all its steps, its metrics and its final picture on screen."""
    return all(page.get_by_text(t).count() > 0 for t in (
        f"{steps} of {steps} steps requested", "Restored PSNR", f"restored ({steps} steps)"))


def connection_trouble(page) -> bool:
    """Streamlit's own signs of a lost server: the connection status or its error dialog."""
    return (page.get_by_test_id("stConnectionStatus").count() > 0
            or page.get_by_text("Connection error").count() > 0)


def watch_websockets(page) -> dict:
    """Count the page's websockets and those that closed, from now on."""
    seen = {"opened": 0, "closed": 0}

    def on_ws(ws):
        seen["opened"] += 1
        ws.on("close", lambda _ws: seen.__setitem__("closed", seen["closed"] + 1))

    page.on("websocket", on_ws)
    return seen


def replica_sample(top: Topology) -> list[dict]:
    return [{"cpu_s": cpu_seconds(s.pid), **s.memory_mb()} for s in top.replicas]


def drive(browser, top: Topology, sessions: int, size: int, steps: int, timeout: float) -> dict:
    """The class: SESSIONS browser contexts through the proxy, then every check's raw data."""
    idle = replica_sample(top)
    nginx_cpu0 = tree_cpu_seconds(top.nginx.pid)
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(sessions)]
    try:
        pages = [c.new_page() for c in contexts]
        sockets = [watch_websockets(p) for p in pages]
        t0 = time.monotonic()
        for p in pages:
            p.set_default_timeout(180_000)
            prepare_restore(p, top.url, size, steps)
        setup_s = time.monotonic() - t0
        ready = replica_sample(top)
        t1 = time.monotonic()
        rows = run_together(pages, timeout)
        all_s = time.monotonic() - t1
        for p, r, ws, c in zip(pages, rows, sockets, contexts):
            r["complete"] = run_complete(p, steps)
            r["exceptions"] = p.locator(".stException").count()
            r["trouble"] = connection_trouble(p)
            r["ws_opened"], r["ws_closed"] = ws["opened"], ws["closed"]  # before we close it
            r["key"] = next((k["value"] for k in c.cookies() if k["name"] == AFFINITY_COOKIE), None)
        done = replica_sample(top)
        nginx_cpu = tree_cpu_seconds(top.nginx.pid) - nginx_cpu0
    finally:
        for c in contexts:
            c.close()
    # a websocket's log line is written when it closes: wait for the sessions' lines
    keys = {r["key"] for r in rows if r["key"]}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        by_key = routes(read_access_log(top.access_log))
        if all(by_key.get(k, {}).get("websockets") for k in keys):
            break
        time.sleep(0.5)
    return {"rows": rows, "by_key": by_key, "idle": idle, "ready": ready, "done": done,
            "setup_s": setup_s, "all_s": all_s, "nginx_cpu_s": nginx_cpu,
            "stats": [s.stats() for s in top.replicas]}


def summarise(top: Topology, raw: dict, sessions: int, size: int, steps: int) -> dict:
    rows, by_key = raw["rows"], raw["by_key"]
    n_rep = len(top.replicas)
    per = [{"replica": i, "sessions": 0, "run_s": [], "sampling_s": []} for i in range(n_rep)]
    moved, no_ws, unrouted = 0, 0, 0
    for r in rows:
        info = by_key.get(r["key"] or "", None)
        ups = sorted(info["upstreams"]) if info else []
        r["upstreams"] = ups
        r["ws_logged"] = info["websockets"] if info else 0
        r["requests"] = info["requests"] if info else 0
        r["media"] = info["media"] if info else 0
        if len(ups) != 1:
            moved += len(ups) > 1
            unrouted += not ups
            r["replica"] = None
            continue
        no_ws += not r["ws_logged"]
        r["replica"] = top.replica_of(ups[0])
        if r["replica"] is None:
            unrouted += 1
            continue
        p = per[r["replica"]]
        p["sessions"] += 1
        if r["seconds"] is not None:
            p["run_s"].append(r["seconds"])
        if r["sampling_s"] is not None:
            p["sampling_s"].append(r["sampling_s"])
    for i, p in enumerate(per):
        idle, ready, done, st = raw["idle"][i], raw["ready"][i], raw["done"][i], raw["stats"][i]
        p["runs_done"] = st.get("restore_done", 0)
        p["runs_failed"] = st.get("restore_failed", 0) + st.get("restore_stopped", 0)
        p["model_loads"] = st.get("model_loads", 0)
        p["cpu_s"] = done["cpu_s"] - idle["cpu_s"]
        p["cpu_setup_s"] = ready["cpu_s"] - idle["cpu_s"]
        p["rss_idle_mb"] = idle.get("rss")
        p["rss_ready_mb"] = ready.get("rss")
        p["peak_mb"] = done.get("hwm")
        p["run_median_s"] = statistics.median(p["run_s"]) if p["run_s"] else None
        p["sampling_median_s"] = statistics.median(p["sampling_s"]) if p["sampling_s"] else None
    cpu_total = sum(p["cpu_s"] for p in per)
    cpu_setup = sum(p["cpu_setup_s"] for p in per)
    mem_added = sum((p["peak_mb"] or 0) - (p["rss_idle_mb"] or 0) for p in per)
    checks = {
        "finished": sum(r["seconds"] is not None for r in rows),
        "complete": sum(bool(r["complete"]) for r in rows),
        "exceptions": sum(r["exceptions"] for r in rows),
        "connection_trouble": sum(bool(r["trouble"]) for r in rows),
        "one_websocket_each": sum(r["ws_opened"] == 1 for r in rows),
        "websockets_dropped": sum(r["ws_closed"] for r in rows),
        "with_cookie": sum(bool(r["key"]) for r in rows),
        "moved": moved,
        "unrouted": unrouted,
        "websocket_not_logged": no_ws,
        "runs_done": sum(p["runs_done"] for p in per),
        "replicas_used": sum(p["sessions"] > 0 for p in per),
    }
    ok = (checks["finished"] == checks["complete"] == checks["one_websocket_each"]
          == checks["with_cookie"] == checks["runs_done"] == sessions
          and not (checks["exceptions"] or checks["connection_trouble"] or checks["websockets_dropped"]
                   or moved or unrouted or no_ws)
          and (checks["replicas_used"] == n_rep or sessions < 2 * n_rep))
    return {"sessions": sessions, "size": size, "steps": steps, "plan": top.plan.describe(),
            "max_runs": top.plan.max_runs, "threads": top.plan.threads, "replicas": per,
            "checks": checks, "ok": ok, "setup_s": raw["setup_s"], "all_s": raw["all_s"],
            "nginx_cpu_s": raw["nginx_cpu_s"], "cpu_s_per_session": cpu_total / sessions,
            "cpu_s_page_per_session": cpu_setup / sessions,
            "cpu_s_run_per_session": (cpu_total - cpu_setup) / sessions,
            "mb_per_session": mem_added / sessions,
            "requests_logged": sum(v["requests"] for v in by_key.values()),
            "sessions_detail": [{k: r.get(k) for k in ("key", "replica", "seconds", "sampling_s",
                                                       "queued", "requests", "media", "ws_logged")}
                                for r in rows]}


def _f(v, fmt: str = "{:.1f}") -> str:
    return "–" if v is None else fmt.format(v)


def replica_table(res: dict) -> str:
    head = ("| replica | sessions | runs done | Run → result, median (s) | sampling per run, median (s) "
            "| CPU (s): setup / total | RSS idle → ready (MB) | peak RSS (MB) | model loads |")
    lines = [head, "|" + "---|" * 9]
    for p in res["replicas"]:
        lines.append(
            f"| {p['replica']} | {p['sessions']} | {p['runs_done']} | {_f(p['run_median_s'])} "
            f"| {_f(p['sampling_median_s'], '{:.2f}')} | {_f(p['cpu_setup_s'])} / {_f(p['cpu_s'])} "
            f"| {_f(p['rss_idle_mb'], '{:.0f}')} → {_f(p['rss_ready_mb'], '{:.0f}')} "
            f"| {_f(p['peak_mb'], '{:.0f}')} | {p['model_loads']} |")
    return "\n".join(lines)


def checks_table(res: dict) -> str:
    c, n = res["checks"], res["sessions"]
    items = [
        ("runs finished (result on screen)", f"{c['finished']}/{n}"),
        ("runs complete (all steps, metrics, final picture)", f"{c['complete']}/{n}"),
        ("runs done in the replicas' counters", f"{c['runs_done']}/{n}"),
        ("sessions with exactly one websocket", f"{c['one_websocket_each']}/{n}"),
        ("websockets closed before the end (dropped)", str(c["websockets_dropped"])),
        ("connection errors / exceptions on screen", f"{c['connection_trouble']} / {c['exceptions']}"),
        ("sessions with the affinity cookie", f"{c['with_cookie']}/{n}"),
        ("sessions answered by more than one replica (moved)", str(c["moved"])),
        ("sessions whose websocket is missing from the proxy log", str(c["websocket_not_logged"])),
        ("replicas that served sessions", f"{c['replicas_used']}/{len(res['replicas'])}"),
        ("requests in the proxy log", str(res["requests_logged"])),
    ]
    return "\n".join(["| check | result |", "|---|---|"] + [f"| {a} | {b} |" for a, b in items])


def report(res: dict, load: str) -> str:
    return (
        "# A class on one deployment\n\n"
        "`python -m bench.class_bench` (bench/class_bench.py): the topology of deploy/local.py "
        f"({res['plan']}) behind Debian's nginx with cookie affinity; {res['sessions']} separate "
        "Chromium contexts open the Restore page through the proxy, set "
        f"{res['size']} px and {res['steps']} steps (default sample and noise level), press Run "
        "together and wait for every result. Browsers, proxy and replicas share this machine; "
        "the browsers' CPU is not counted below (in a class they run on the visitors' laptops).\n\n"
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {load} at the end; {time.strftime('%Y-%m-%d %H:%M')}. "
        f"Set-up of all pages {res['setup_s']:.0f} s, Run → last result {res['all_s']:.0f} s; "
        f"nginx used {res['nginx_cpu_s']:.2f} CPU-s.\n\n"
        f"**{'PASS' if res['ok'] else 'FAIL'}**\n\n" + checks_table(res) + "\n\n"
        "Per replica (CPU: the replica process, all its threads, from /proc/<pid>/stat; "
        "setup = loading and setting up the pages before Run):\n\n" + replica_table(res) + "\n\n"
        f"**Cost per visitor** (this run: one {res['size']} px × {res['steps']} steps restore, plus "
        "opening and setting up the page): "
        f"{res['cpu_s_per_session']:.1f} CPU-seconds ({res['cpu_s_page_per_session']:.1f} to open and "
        f"set up the page, {res['cpu_s_run_per_session']:.1f} for the run and its live view) and "
        f"{res['mb_per_session']:.0f} MB per session "
        "(the replicas' peak RSS minus their idle RSS, over the sessions; it includes each "
        "replica's one copy of the model, so it overstates the cost of more sessions).\n"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.class_bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--max-runs", type=int, help="runs at once per replica (default 1)")
    ap.add_argument("--threads", type=int, help="PyTorch threads per run (default: fill the cores)")
    ap.add_argument("--size", type=int, default=128, choices=SIZES)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds for all runs to finish")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        print("Debian chromium is needed (make chromium)", file=sys.stderr)
        return 2
    if find_nginx() is None:
        print("nginx is needed (make class installs it)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    plan = make_plan(a.replicas, a.max_runs, a.threads)
    print(f"{a.sessions} sessions × {a.size} px × {a.steps} steps; {plan.describe()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        env = {"DIFFUSION_LAB_USER_MODELS": str(Path(tmp) / "user_models")}
        with local_class(Path(tmp) / "class", plan, env=env) as top:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                raw = drive(browser, top, a.sessions, a.size, a.steps, a.timeout)
            finally:
                browser.close()
            res = summarise(top, raw, a.sessions, a.size, a.steps)
    try:
        load = "load average {:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg())
    except OSError:
        load = "load average unknown"
    text = report(res, load)
    print("\n" + text)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    a.out.with_suffix(".json").write_text(json.dumps(dict(res, load=load), indent=1, default=str) + "\n")
    print(f"wrote {a.out} and {a.out.with_suffix('.json').name}")
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
