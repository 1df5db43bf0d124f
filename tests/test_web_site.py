"""Browser mode's Python side without a browser: when Create can be offered in the browser
(the npm runtime and a fresh export), what the component is told, how its status is read,
and the static site's files (diffusion_core.browser)."""

from __future__ import annotations

import json
import shutil

import pytest

from diffusion_core.app import create as app_create
from diffusion_core.browser import export
from diffusion_core.browser.create import (
    LOAD_TIMEOUT_S,
    READY_NOTE,
    RUNTIME_FILES,
    TIMEOUT_ENV,
    browser_offer,
    browser_settings,
    load_timeout_s,
    read_status,
    runtime_problem,
)
from diffusion_core.browser.site import MARKER, export_site, site_size
from diffusion_core.models.registry import find_model


def _fake_runtime(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for f in RUNTIME_FILES:
        (folder / f).write_bytes(b"\0asm")
    (folder / "manifest.json").write_text(json.dumps({"version": "1.31.1"}))
    return folder


def test_the_browser_uses_the_pages_own_limits_and_menus():
    assert export.WORLD_ORDER == app_create.WORLD_ORDER
    assert export.FIRST_ASK == app_create.FIRST_ASK
    s = browser_settings({}, app_create.BROWSER_LIMITS)
    assert (s["steps_min"], s["steps_max"]) == (app_create.STEPS_MIN, app_create.STEPS_MAX)
    assert s["guidance_max"] == app_create.GUIDANCE_MAX and s["grid_n"] == app_create.GRID_N
    assert s["sweep"] == list(app_create.SWEEP) and s["sweep_n"] == app_create.SWEEP_N
    assert (s["steps"], s["guidance"], s["sampler"]) == (app_create.DEFAULT_STEPS,
                                                         app_create.DEFAULT_GUIDANCE,
                                                         app_create.DEFAULT_SAMPLER)


def test_settings_from_the_page_are_clamped():
    s = browser_settings({"what": "x" * 500, "guidance": "nan?", "steps": 10_000,
                          "sampler": "<script>", "seed": -5}, app_create.BROWSER_LIMITS)
    assert len(s["what"]) == 80 and s["guidance"] == 3.0 and s["steps"] == 100
    assert s["sampler"] == app_create.DEFAULT_SAMPLER == "dpmpp_2m" and s["seed"] == 0


def test_the_load_time_limit_can_be_set_for_a_slow_network(monkeypatch):
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert load_timeout_s() == LOAD_TIMEOUT_S == 45
    for raw, want in (("8", 8), ("0", 1), ("100000", 600), ("soon", 45), ("", 45)):
        monkeypatch.setenv(TIMEOUT_ENV, raw)
        assert load_timeout_s() == want, raw
        assert browser_settings({}, app_create.BROWSER_LIMITS)["timeout_s"] == want


def test_offer_needs_the_runtime_and_a_fresh_export(tmp_path):
    info = find_model("mnist")
    vendor = _fake_runtime(tmp_path / "vendor")
    models = tmp_path / "models"
    (models / "mnist").mkdir(parents=True)
    no_runtime = browser_offer(info, {}, root=export.MODELS_DIR, vendor=tmp_path / "none")
    assert not no_runtime.available and "not installed" in no_runtime.note
    assert no_runtime.note.startswith("Drawing on the server: ")
    not_exported = browser_offer(info, {}, root=models, vendor=vendor)
    assert not not_exported.available and "export-web --model mnist" in not_exported.note
    (models / "mnist" / export.ONNX_FILE).write_bytes(b"onnx")
    data = {"title": "Digits", "weights_sha256": "0" * 64}
    (models / "mnist" / export.JSON_FILE).write_text(json.dumps(data))
    stale = browser_offer(info, {}, root=models, vendor=vendor)
    assert not stale.available and "older than its weights" in stale.note
    data["weights_sha256"] = info.card["sha256"]
    (models / "mnist" / export.JSON_FILE).write_text(json.dumps(data))
    ok = browser_offer(info, {"what": "7", "guidance": 4}, root=models, vendor=vendor)
    assert ok.available
    assert ok.args["model"] == "mnist" and ok.args["models"][0]["base"] == "models/mnist/"
    assert ok.args["settings"]["what"] == "7" and ok.args["settings"]["guidance"] == 4.0


def test_status_from_the_browser_becomes_one_line():
    assert read_status(None, "mnist").state == "checking"
    ready = read_status({"status": "ready", "model": "mnist", "ms_per_call": 4.2}, "mnist")
    assert ready.state == "ready" and ready.note == READY_NOTE and ready.ms_per_call == 4.2
    # a browser that drew the world before is loading this one
    assert read_status({"status": "ready", "model": "fashion"}, "mnist").state == "ready"
    assert read_status({"status": "error", "model": "fashion"}, "mnist").state == "checking"
    for status, words in (("error", "could not start the model"),
                          ("unsupported", "this browser cannot run it"),
                          ("timeout", "took too long")):
        s = read_status({"status": status, "model": "mnist",
                         "message": "bad\n**thing** [x](javascript:alert(1)) <b>" + "y" * 400},
                        "mnist")
        assert s.state == "fallback" and words in s.note and "\n" not in s.note
        assert s.every_model == (status == "unsupported")  # no other world would do better
        assert "**" not in s.note and "[" not in s.note and "<b>" not in s.note
        assert len(s.note) < 320
    for junk in ("ready", 3, {"status": "maybe"}, ["ready"]):
        assert read_status(junk, "mnist").state == "fallback"


@pytest.mark.skipif(bool(runtime_problem()), reason="the npm runtime is not installed here")
def test_export_site_writes_a_static_folder_and_keeps_other_folders_safe(tmp_path):
    site = export_site(tmp_path / "site", ["mnist"])
    root = site.root
    for f in ("index.html", "scrubber.html", "create.js", "worker.js", "sampler.js",
              "scrubber.js", "style.css", MARKER, ".nojekyll", "models/index.json",
              "models/mnist/model.onnx", "models/mnist/model.json", "samples/index.json",
              "samples/noise.png", "samples/cat.png", *[f"vendor/{f}" for f in RUNTIME_FILES]):
        assert (root / f).is_file(), f
    assert site.models == ["mnist"] and site.bytes == site_size(root)
    index = json.loads((root / "models" / "index.json").read_text())
    assert [m["name"] for m in index] == ["mnist"] and index[0]["what"] == "7"
    samples = json.loads((root / "samples" / "index.json").read_text())
    assert set(samples["schedules"]) == {"linear", "linear_vp", "cosine", "sigmoid_chen"}
    assert all(len(v) == samples["T"] for v in samples["schedules"].values())
    assert len(samples["samples"]) >= 10
    assert "cdn" not in (root / "index.html").read_text().lower()
    # written again over itself: fine; over a folder with other files: refused, untouched
    export_site(root, ["fashion"])
    assert not (root / "models" / "mnist").exists() and (root / "models" / "fashion").is_dir()
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        export_site(other)
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    with pytest.raises(ValueError, match="not exported"):
        export_site(tmp_path / "x", ["natural"])
    shutil.rmtree(root)


@pytest.mark.system
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_without_npm_says_it_draws_on_the_server_only():
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    p = subprocess.run(["make", "--no-print-directory", "web", "NPM=no-such-npm-here"], cwd=root,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "npm is missing: Create will draw on the server only" in p.stdout
