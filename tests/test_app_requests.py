"""The pages' library side (diffusion_core.app): clamps, the Add-noise view, the Restore and
Cost-of-steps requests and what they show; and the one model cache in the registry."""

from __future__ import annotations

import math
import os
import shutil
import threading
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from diffusion_core.app import cost as cost_app
from diffusion_core.app import restore as restore_app
from diffusion_core.app.forward import DEFAULT_STEP, ForwardView
from diffusion_core.app.models import device_options, open_model
from diffusion_core.app.settings import choose, keep_known
from diffusion_core.maths.forward import draw_noise, step_for_sigma, x_at_step
from diffusion_core.maths.schedules import T_MAX, T_MIN, make_schedule
from diffusion_core.media.export import animation_size, metrics_json, run_summary
from diffusion_core.media.viz import eps_display, error_display
from diffusion_core.models import registry
from diffusion_core.models.registry import ModelInfo, ModelLoadError
from diffusion_core.system import counters
from diffusion_core.units import MAX_STEPS, SEED_MAX, clamp_float, clamp_int, sigma_from_255
from tests.doubles import Oracle

ROOT = Path(__file__).resolve().parent.parent
X0 = torch.linspace(-1, 1, 3 * 12 * 16).reshape(3, 12, 16)


# ---------------------------------------------------------------- clamps


def test_clamps_take_any_value():
    assert clamp_int("7", 0, 5, 1) == 5 and clamp_int(-3, 0, 5, 1) == 0
    assert clamp_int(None, 0, 5, 1) == 1 and clamp_int("x", 0, 5, 1) == 1
    assert clamp_int(float("inf"), 0, 5, 1) == 1  # int(inf) overflows: no number at all
    assert clamp_float(float("nan"), 0.0, 1.0, 0.5) == 0.5 and clamp_float(55, 0.0, 1.0, 0.0) == 1.0
    assert choose("b", ["a", "b"], "a") == "b" and choose([1], ["a"], "a") == "a"
    assert keep_known(["b", [1], "x", "a"], ["a", "b"]) == ["b", "a"]
    assert keep_known(None, ["a"]) == [] and keep_known(5, ["a"]) == []


# ---------------------------------------------------------------- Add noise


def test_forward_view_clamps_and_matches_the_forward_process():
    view = ForwardView.clamped(X0, schedule="<b>nope</b>", T=-5, seed=-(2**40))
    assert view.schedule.name == "linear" and view.T == T_MIN and view.seed == 0
    assert ForwardView.clamped(X0, "cosine", 10**9, SEED_MAX + 1).T == T_MAX
    view = ForwardView.clamped(X0, "sigmoid", 1000, 42)  # an old name still works
    assert view.schedule.name == "sigmoid_chen"
    assert torch.equal(view.noise, draw_noise(X0.shape, 42))
    at = view.at(300)
    assert torch.equal(at.x_t, x_at_step(X0, view.noise, view.schedule, 300))
    assert at.signal == pytest.approx(view.schedule.alpha_bar[299])
    assert at.snr == pytest.approx(at.signal / (1 - at.signal))
    assert at.sigma_255 == pytest.approx(at.sigma * 127.5)
    assert torch.equal(view.at(-4).x_t, X0) and view.at(10**6).step == view.T
    assert view.at(view.T).nearly_gone and not view.at(1).nearly_gone
    assert view.clamp_step(None) == DEFAULT_STEP and view.clamp_step("x", 0) == 0
    other = view.with_schedule("cosine")
    assert other.schedule.name == "cosine" and other.noise is view.noise and other.T == view.T
    assert "sigmoid_chen" not in view.other_schedules()
    strip = view.strip(8)
    assert strip.height > X0.shape[1] and strip.width > 8 * X0.shape[2]
    assert view.strip_file_name == "forward_sigmoid_chen_T1000_seed42.png"


# ---------------------------------------------------------------- Restore


def _sched(T=1000):
    return make_schedule("linear", T)


def test_the_noise_step_follows_the_add_noise_page():
    s = _sched()
    typical = step_for_sigma(s, sigma_from_255(25))
    follow = restore_app.follow_shared_step
    assert follow(None, None, DEFAULT_STEP, s) == (typical, DEFAULT_STEP)  # untouched: typical
    assert follow(None, None, 700, s) == (700, 700)  # moved there first: follow it
    assert follow(120, 700, 700, s) == (120, 700)  # own choice since: keep it
    assert follow(120, 700, 640, s) == (640, 640)  # moved again: follow
    assert follow(5000, 700, 700, _sched(100)) == (100, 700)  # clamped to T
    assert follow("x", 700, 700, s) == (typical, 700)


def _request(**kw):
    args = dict(mode="restore", model="natural", schedule="linear", T=1000, seed=0,
                noise_step=100, shared_step=DEFAULT_STEP, seen_shared_step=DEFAULT_STEP,
                image="Astronaut")
    return restore_app.RestoreRequest.clamped(**(args | kw))


def test_restore_request_clamps_hostile_values():
    req = _request(mode="<b>", T=-5, seed=-1, noise_step=-7, shared_step=10**9, steps=10**9,
                   sampler="nope", eta=55.0, gen_size=33, device="tpu", schedule="<b>nope</b>")
    assert (req.mode, req.T, req.seed, req.steps, req.sampler) == ("restore", T_MIN, 0, MAX_STEPS, "ddim")
    assert 1 <= req.noise_step <= req.T and req.eta == 1.0 and req.run_eta == 1.0
    assert req.gen_size == restore_app.DEFAULT_GEN_SIZE and req.device == "auto"
    assert req.device in device_options() and req.schedule.name == "linear"
    assert req.planned <= req.noise_step
    assert req.widget_values() == {"steps": MAX_STEPS, "sampler": "ddim", "eta": 1.0,
                                   "step": req.noise_step, "seen_shared_step": 10**9}


def test_restore_request_options_reach_only_the_samplers_that_take_them():
    heun = _request(sampler="heun", eta=0.7)
    assert heun.eta == 0.7 and heun.run_eta == 0.0 and not heun.takes_eta and heun.karras
    assert _request(sampler="ddim", eta=0.7).run_eta == 0.7


def test_generate_starts_at_pure_noise_and_leaves_the_noise_step_alone():
    req = _request(mode="generate", noise_step=None, T=500)
    assert req.noise_step == 500 and req.image is None and not req.restoring
    assert set(req.widget_values()) == {"steps", "sampler", "eta"}
    assert req.before_run(None, None) is None


def test_restore_request_knows_when_the_settings_changed():
    req = _request()
    assert req.before_run(None, X0) == "first"
    settings = {"mode": "restore", "model": "natural", "noise_step": 100, "seed": 0,
                "image": "Astronaut", "size": [12, 16]}

    class Job:
        done = True

    job = Job()
    job.settings = settings
    assert req.before_run(job, X0) is None
    assert _request(seed=3).before_run(job, X0) == "changed"
    assert _request(noise_step=150, seen_shared_step=DEFAULT_STEP).before_run(job, X0) == "changed"
    assert req.before_run(job, X0[:, :8]) == "changed"  # another picture size
    job.done = False  # a run is going: nothing is drawn before it
    assert req.before_run(job, X0) is None
    assert torch.equal(req.start_picture(X0), x_at_step(X0, draw_noise(X0.shape, 0), req.schedule, 100))


def test_model_choices_put_digit_models_first_when_generating():
    photo = ModelInfo("natural", ROOT, "shipped", {"kind": "photo"})
    digits = ModelInfo("digits", ROOT, "shipped", {"kind": "digits"})
    other = ModelInfo("mine", ROOT, "user", {"kind": "digits"})
    models = [photo, digits, other]
    assert restore_app.model_choices("restore", models) == [photo]
    assert restore_app.model_choices("generate", models) == [digits, other, photo]


def test_a_restore_request_runs_and_its_outcome_is_what_the_page_shows():
    den = Oracle(X0)
    den.channels = 3
    req = _request(steps=3, noise_step=200)
    job = req.start(den, X0)
    assert job.wait(60) and job.state == "done", job.error
    assert job.settings["steps"] == 3 and job.settings["size"] == [12, 16]
    assert job.settings["image"] == "Astronaut" and job.n == 3
    frac, text = restore_app.progress(job.snapshot())
    assert frac == 1.0 and text.startswith("Step 3 of 3")
    out = restore_app.RestoreOutcome(job)
    assert out.known
    labels = [c[0] for c in out.cards()]
    assert labels[:3] == ["Noisy input PSNR", "Restored PSNR", "Restored SSIM"]
    assert out.frame_steps() == [1, 2, 3] and out.frame(2).i == 1 and out.frame(99).i == 0
    assert out.stem == "restore_natural_ddim_3steps_t200_seed0"
    gif = out.gif()
    assert gif[:3] == b"GIF" and out.gif() is gif  # made once, then kept with the job
    assert out.png()[:4] == b"\x89PNG" and '"settings"' in out.json()


def test_a_gray_model_restores_the_gray_of_a_colour_picture():
    den = Oracle(X0.mean(0, keepdim=True))
    den.channels = 1
    job = _request(steps=2).start(den, X0)
    assert job.wait(60) and job.state == "done", job.error
    assert job.image.shape == (1, 12, 16)
    gen = _request(mode="generate", steps=2).start(den, None)
    assert gen.wait(60) and gen.shape == (1, restore_app.DIGIT_SIDE, restore_app.DIGIT_SIDE)


def test_waiting_and_starting_say_so():
    base = {"n": 5, "i": 0, "latest": None, "elapsed": 0.0}
    assert restore_app.progress(base | {"state": "new"})[1] == "Starting…"
    assert "yours starts next" in restore_app.progress(base | {"state": "waiting"})[1]


# ---------------------------------------------------------------- Cost of steps


def _cost(**kw):
    args = dict(model="natural", schedule="linear", T=1000, seed=0, image="Astronaut")
    return cost_app.CostRequest.clamped(**(args | kw))


def test_cost_request_clamps_hostile_values(monkeypatch):
    req = _cost(size=100000, steps=[0, 7, 10**9], samplers=["nope"], noise=-3)
    assert req.widget_values() == {"size": 128, "noise": 50, "samplers": [], "steps": []}
    assert req.problem == "Pick at least one sampler." and req.calls == 0
    assert _cost(samplers=["ddim"], steps=[]).problem == "Pick at least one number of steps."
    big = _cost(samplers=["ddim", "heun", "ddpm", "dpmpp_2m"], steps=list(cost_app.STEP_CHOICES),
                noise=200)
    assert big.problem is None  # every choice at once stays within the ceiling ...
    monkeypatch.setattr(cost_app, "MAX_CALLS", big.calls - 1)  # ... which is still checked
    assert big.problem.startswith(f"That is {big.calls} network calls, more than the")


def test_cost_request_plans_like_the_study():
    req = _cost(samplers=["heun", "ddim"], steps=[5, 1, 1], noise=25)
    assert req.run_samplers == ["ddim", "heun"] and req.steps_list == [1, 5]
    assert req.noise_step == step_for_sigma(req.schedule, sigma_from_255(25))
    # DDIM 1 + 5, Heun 1 + 9, the 250-step yardstick (capped at the noise step)
    assert req.calls == 1 + 5 + 1 + 9 + req.reference_run and req.problem is None
    x = torch.zeros(3, 300, 150)
    assert tuple(req.picture(x).shape) == (3, 128, 64)


def test_a_cost_study_runs_and_its_results_are_arranged_for_the_page():
    req = _cost(samplers=["ddim"], steps=[1, 2], noise=25, size=32)
    den = Oracle(X0)
    x0 = req.picture(X0)
    job = req.start(den, x0, "cpu")
    assert job.wait(60) and job.state == "done", job.error
    assert not req.changed_since(job.settings, x0) and _cost(seed=1).changed_since(job.settings, x0)
    found = cost_app.StudyResults(job.rows, "reference")
    assert found.score == "psnr_vs_reference"
    assert [s for s, _ in found.by_sampler()] == ["ddim"]
    assert all(math.isfinite(found.y(r)) for r in job.rows)  # infinite agreement drawn at the top
    assert [r["steps"] for r in found.table()] == [1, 2]
    assert cost_app.StudyResults(job.rows, "<b>").score == "psnr"
    frac, text = cost_app.progress({"state": "running", "calls_done": 2, "total": 4,
                                    "current": ("heun", 1), "elapsed": 2.0})
    assert frac == 0.5 and text.startswith("Now: Heun with 1 step ·") and "about 2 s left" in text


# ---------------------------------------------------------------- media helpers


def test_error_and_noise_pictures():
    err = error_display(X0, X0)
    assert err.dtype.name == "uint8" and err.max() == 0
    assert error_display(X0, -X0).max() == 255
    assert eps_display(torch.zeros(1, 4, 4)).tolist() == [[128] * 4] * 4
    assert animation_size(32)["min_side"] == 256 and animation_size(200)["min_side"] is None


def test_run_summary_is_plain_data(tmp_path):
    class Result:
        steps_requested, steps_run, seconds, steps_per_s, device = 3, 3, 0.5, 6.0, "cpu"
        timesteps, final_metrics, metrics = [2, 1], {"psnr": math.inf}, []
        peak_memory_mb, stopped = None, False

    d = run_summary(Result())
    assert d["steps_run"] == 3 and d["final"] == {"psnr": math.inf}
    assert '"psnr": null' in metrics_json(Result())


# ---------------------------------------------------------------- the one model cache


@pytest.fixture()
def fresh_cache(monkeypatch, tmp_path):
    """An empty model cache and a user-model folder holding copies of the digits model."""
    monkeypatch.setattr(registry, "_CACHE", OrderedDict())
    monkeypatch.setenv("DIFFUSION_LAB_USER_MODELS", str(tmp_path))
    for name in ("d1", "d2", "d3"):
        shutil.copytree(ROOT / "models" / "digits", tmp_path / name)
    return tmp_path


def _loads(name: str) -> int:
    return counters.snapshot().get(f"model_loads:{name}@cpu", 0)


def test_the_cache_loads_each_model_once_for_every_thread(fresh_cache):
    before = _loads("d1")
    got: list = []
    threads = [threading.Thread(target=lambda: got.append(registry.get_denoiser("d1"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _loads("d1") == before + 1 and all(d is got[0] for d in got)
    assert open_model("d1", "cpu") is got[0]  # the pages' route is the same cache


def test_a_newer_weights_file_replaces_the_older_one(fresh_cache):
    first = registry.get_denoiser("d1")
    weights = fresh_cache / "d1" / "model.safetensors"
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    second = registry.get_denoiser("d1")
    assert second is not first
    assert [k[2] for k in registry.cached_models() if k[0].endswith("d1")] == [st.st_mtime_ns + 10**9]


def test_the_cache_keeps_the_most_recently_used_models(fresh_cache, monkeypatch):
    monkeypatch.setattr(registry, "MAX_CACHED_MODELS", 2)
    d1 = registry.get_denoiser("d1")
    registry.get_denoiser("d2")
    assert registry.get_denoiser("d1") is d1  # used again: now the most recent
    registry.get_denoiser("d3")  # d2 goes
    names = [Path(k[0]).name for k in registry.cached_models()]
    assert names == ["d1", "d3"]


def test_a_model_that_cannot_be_opened_says_why(fresh_cache):
    (fresh_cache / "d2" / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelLoadError, match="d2"):
        open_model("d2", "cpu")
    with pytest.raises(ModelLoadError, match="could not be loaded on"):
        open_model("d1", "no-such-device")


def test_no_page_or_ui_module_keeps_a_model_cache_of_its_own():
    for p in [ROOT / "app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "ui").glob("*.py")]:
        assert "cache_resource" not in p.read_text(encoding="utf-8"), p


def test_an_8_bit_model_is_kept_only_while_its_float_model_is(fresh_cache, monkeypatch):
    monkeypatch.setattr(registry, "_INT8_CACHE", {})
    monkeypatch.setattr(registry, "Int8Denoiser", lambda den, **options: ("int8", den))
    monkeypatch.setattr(registry, "MAX_CACHED_MODELS", 1)
    q1 = registry.get_int8_denoiser("d1")
    assert q1 == ("int8", registry.get_denoiser("d1")) and registry.get_int8_denoiser("d1") is q1
    registry.get_denoiser("d2")  # d1's float model leaves the cache ...
    registry.get_int8_denoiser("d2")  # ... and its 8-bit copy goes at the next call
    assert [k[0] for k in registry._INT8_CACHE] == ["d2"]
