"""How long a run will take: the measured speed (kept per model and device), the model calls
each page's run makes (checked against real runs of the same jobs), the first-visit defaults
chosen from a budget, and the estimate on the Restore, Repair and Create pages."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from diffusion_core.app import estimate as est
from diffusion_core.app import repair as repair_app
from diffusion_core.app import restore as restore_app
from diffusion_core.app.create import (
    DEFAULT_LADDER as CREATE_LADDER,
)
from diffusion_core.app.create import (
    DEFAULT_SAMPLER as CREATE_SAMPLER,
)
from diffusion_core.app.create import (
    DEFAULT_STEPS,
    CreateRequest,
    create_models,
    first_steps,
)
from diffusion_core.jobs import timing
from diffusion_core.jobs.repair import DenoiseRequest, InpaintRequest
from diffusion_core.jobs.timing import Speed, interpolate, speed_of
from diffusion_core.maths.schedules import make_schedule
from diffusion_core.system import counters
from diffusion_core.tasks.inpaint import inpaint
from diffusion_core.tasks.restore import restore
from tests.doubles import Oracle

ROOT = Path(__file__).resolve().parent.parent


def flat(per_call: float = 1.0, per_score: float = 0.0) -> Speed:
    """Every call ``per_call`` seconds and every score ``per_score``, whatever the size."""
    return Speed("test device", 1, ((1, per_call), (2, per_call)), ((1, per_score), (2, per_score)))


def per_pixel(s_per_px: float) -> Speed:
    """A call costs ``s_per_px`` per pixel (batch x height x width); scores cost nothing."""
    return Speed("test device", 1, ((0, 0.0), (1000, 1000 * s_per_px)), ((1, 0.0), (2, 0.0)))


# ---------------------------------------------------------------- the measured speed


def test_interpolate_reads_between_and_past_the_points():
    pts = [(200, 3.0), (100, 1.0), (400, 5.0)]
    assert interpolate(pts, 150) == pytest.approx(2.0)
    assert interpolate(pts, 300) == pytest.approx(4.0)
    assert interpolate(pts, 600) == pytest.approx(7.0)  # along the last segment
    assert interpolate(pts, 50) == 0.0  # along the first segment, never below zero
    assert interpolate([(100, 2.0)], 50) == pytest.approx(1.0)  # one point: through zero


def test_speed_is_measured_once_per_model_and_device_and_again_after_a_busy_one(monkeypatch):
    monkeypatch.setattr(timing, "STARVED_SHARE", 0.0)  # never starved: only other jobs count
    timing.forget_speeds()
    x0 = torch.zeros(1, 8, 8)
    den = Oracle(x0)
    shapes = [(1, 1, 8, 8), (2, 1, 8, 8)]
    got = []
    threads = [threading.Thread(target=lambda: got.append(speed_of("oracle", den, "cpu", shapes)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 3 and got[0] is got[1] is got[2]  # three visitors, one measurement
    first = got[0]
    assert [p for p, _ in first.points] == [64, 128] and all(t > 0 for _, t in first.points)
    assert len(den.calls) >= 2 * 2  # a warm-up and a timed call at each size at least
    n = len(den.calls)
    assert speed_of("oracle", den, "cpu", shapes) is first and len(den.calls) == n  # kept
    # measured while another run was working: taken again once nothing else runs
    counters.bump("restore_threads")
    try:
        timing.forget_speeds()
        busy = speed_of("oracle", den, "cpu", shapes)
        assert busy.busy
        assert speed_of("oracle", den, "cpu", shapes) is busy  # still busy: kept
    finally:
        counters.bump("restore_threads", -1)
    again = speed_of("oracle", den, "cpu", shapes)
    assert again is not busy and not again.busy and again.measurements == 2
    assert speed_of("oracle", den, "cpu", shapes) is again


def test_a_starved_measurement_is_taken_again_a_few_times_keeping_the_fastest(monkeypatch):
    monkeypatch.setattr(timing, "STARVED_SHARE", 2.0)  # the thread never gets enough time
    timing.forget_speeds()
    den = Oracle(torch.zeros(1, 8, 8))
    shapes = [(1, 1, 8, 8), (2, 1, 8, 8)]
    seen = []
    for _ in range(timing.MAX_MEASUREMENTS + 2):
        seen.append(speed_of("oracle", den, "cpu", shapes))
    assert all(sp.busy for sp in seen)
    assert [sp.measurements for sp in seen] == [1, 2, 3, 3, 3]  # then it is kept as it is
    assert seen[-1] is seen[-2]
    for p, t in seen[-1].points:  # the fastest time of each size
        assert t == min(dict(sp.points)[p] for sp in seen[:3])
    merged = timing.fastest(Speed("a", 1, ((1, 1.0), (2, 5.0)), ((3, 2.0),)),
                            Speed("b", 1, ((1, 3.0), (2, 4.0)), ((3, 1.0),)))
    assert merged.points == ((1, 1.0), (2, 4.0)) and merged.score_points == ((3, 1.0),)
    assert merged.device == "b" and merged.measurements == 2


def test_a_model_that_fails_gives_no_speed():
    timing.forget_speeds()

    def broken(y, sigma):
        raise RuntimeError("no")

    assert speed_of("broken", broken, "cpu", [(1, 1, 8, 8), (1, 1, 16, 16)]) is None


# ---------------------------------------------------------------- counting model calls


@pytest.mark.parametrize("sampler, steps, start, calls", [
    ("ddim", 10, 57, 10), ("ddpm", 10, 57, 10), ("dpmpp_2m", 10, 57, 10), ("heun", 10, 57, 19),
    ("ddim", 25, 5, 5), ("heun", 25, 5, 9), ("heun", 1, 57, 1),
])
def test_restore_counts_the_calls_a_run_makes(sampler, steps, start, calls):
    x0 = torch.zeros(3, 8, 8)
    e = est.restore_estimate(flat(), x0.shape, start, steps, sampler, scored=False)
    assert e.calls == calls and e.seconds == pytest.approx(calls + est.RUN_START_S)
    oracle = Oracle(x0)
    restore(oracle, x0, make_schedule("linear"), start, steps, sampler=sampler)
    assert len(oracle.calls) == calls


def test_restore_adds_the_scores_only_when_restoring_a_known_picture():
    shape = (3, 16, 16)
    scored = est.restore_estimate(flat(0.0, 1.0), shape, 57, 10, "ddim", scored=True)
    plain = est.restore_estimate(flat(0.0, 1.0), shape, 57, 10, "ddim", scored=False)
    assert scored.seconds - plain.seconds == pytest.approx(10 * est.RESTORE_STEP_SCORES)
    # the page's request: a generation is not scored, and a digits model draws 32 px
    req = restore_app.RestoreRequest.clamped(mode="generate", model="x", schedule="linear",
                                             T=1000, seed=0, steps=10, sampler="heun")
    assert req.run_shape(None, 1) == (1, 32, 32)
    e = req.estimate(per_pixel(1.0), None, 1)
    assert e.calls == 19 and e.seconds == pytest.approx(19 * 32 * 32 + est.RUN_START_S)
    assert req.estimate(None, None, 1) is None


@pytest.mark.parametrize("steps, jump, resample, calls", [
    (12, 5, 1, 12), (12, 5, 3, 12 + 2 * 2 * 5), (50, 10, 2, 50 + 4 * 10), (7, 10, 3, 7),
])
def test_repaint_counts_its_jumps_back(steps, jump, resample, calls):
    assert est.repaint_calls(steps, jump, resample) == calls
    x0 = torch.zeros(3, 8, 8)
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[2:5, 2:5] = True
    oracle = Oracle(x0)
    res = inpaint(oracle, x0, mask, steps=steps, jump_length=jump, resample=resample)
    assert res.calls == len(oracle.calls) == calls
    # the page's estimate of the same request
    req = InpaintRequest(x0, mask, steps, resample, jump)
    e = repair_app.inpaint_time(req, flat())
    assert e.calls == calls
    assert e.seconds == pytest.approx(calls + est.RUN_START_S)


def test_denoise_counts_one_shot_steps_and_the_8bit_preparation():
    y = torch.zeros(3, 16, 16)
    sigma = 2 * 25 / 255

    def calls(**kw) -> int:
        return repair_app.denoise_time(DenoiseRequest(y, sigma, **kw), flat()).calls

    start = repair_app.step_for_noise(repair_app.SCHEDULE, sigma)
    assert calls(mode="iterative", steps=10) == 10
    assert calls(mode="iterative", steps=100) == start < 100  # no more steps than the start
    assert calls(mode="one_shot") == 1
    assert repair_app.denoise_time(DenoiseRequest(y, 0.0, mode="iterative"), flat()).calls == 0
    fast = repair_app.denoise_time(DenoiseRequest(y, sigma, mode="one_shot", int8=True), flat())
    full = repair_app.denoise_time(DenoiseRequest(y, sigma, mode="one_shot"), flat())
    assert fast.seconds - full.seconds == pytest.approx(
        est.INT8_CALL_SHARE - 1 + est.INT8_PREPARE_CALLS + est.INT8_PREPARE_S)


@pytest.mark.parametrize("what, sampler", [("7", "heun"), ("anything", "heun"), ("3", "ddim")])
def test_create_counts_the_batches_it_draws(what, sampler):
    """Guidance doubles the batch; the sweep draws a few pictures again at each strength:
    the estimate adds up the same pixels the real job sends through the model."""
    info = create_models()[0]
    req = CreateRequest.clamped(info=info, what=what, steps=6, sampler=sampler)
    oracle = Oracle(torch.zeros(1, 1, req.size, req.size))

    def den(y, sigma, labels=None):
        return oracle(y, sigma)

    job = req.start(den)
    assert job.wait(60) and job.state == "done", job.error
    pixels = sum(y.shape[0] * y.shape[-2] * y.shape[-1] for y, _ in oracle.calls)
    e = req.estimate(per_pixel(1.0))
    assert e.seconds == pytest.approx(pixels + est.RUN_START_S)
    per_run = {"heun": 11, "ddim": 6}[sampler]
    assert e.calls == len(oracle.calls) == per_run * (1 if what == "anything" else 6)
    assert req.estimate(None) is None


# ---------------------------------------------------------------- first-visit defaults


def test_pick_default_takes_the_richest_that_fits():
    ladder = [30, 20, 10]
    assert est.pick_default(ladder, float, 25, 99) == 20
    assert est.pick_default(ladder, float, 100, 99) == 30
    assert est.pick_default(ladder, float, 5, 99) == 10  # nothing fits: the cheapest
    assert est.pick_default(ladder, float, None, 99) == 99  # no budget: the fixed one


def test_each_page_picks_its_defaults_from_the_speed():
    fast, slow = per_pixel(1e-12), per_pixel(1.0)
    assert restore_app.first_settings(fast, 10) == restore_app.DEFAULT_LADDER[0] == (512, 25)
    assert restore_app.first_settings(slow, 10) == restore_app.DEFAULT_LADDER[-1]
    assert restore_app.first_settings(fast, None) == restore_app.FIXED_DEFAULTS == (256, 25)
    assert restore_app.first_settings(None, 10) == (256, 25)
    # 25 calls of size^2 * 2e-6 s: 512 px takes 13 s, 384 px 7.4 s
    assert restore_app.first_settings(per_pixel(2e-6), 10) == (384, 25)
    assert repair_app.first_settings(fast, 10) == (256, 50)
    assert repair_app.first_settings(slow, 10) == repair_app.DEFAULT_LADDER[-1]
    assert repair_app.first_settings(fast, None) == repair_app.FIXED_DEFAULTS == (128, 50)
    # 50 calls of size^2 * 1e-6 s: 256 px takes 3.3 s, 192 px 1.9 s
    assert repair_app.first_settings(per_pixel(1e-6), 2.5) == (192, 50)
    assert first_steps(fast, 10) == CREATE_LADDER[0] == DEFAULT_STEPS
    assert first_steps(slow, 10) == CREATE_LADDER[-1]
    assert first_steps(None, 10) == DEFAULT_STEPS
    # the default sampler (DPM-Solver++ 2M), n steps: n calls of 32 pictures (16, guided), and
    # of 32 more in the sweep (4 at strengths 0 and 1, 8 at 2, 4 and 8): n x 64 x 1024 px at
    # 1 us a pixel
    assert CREATE_SAMPLER == "dpmpp_2m"
    s = 64 * 1024 * 1e-6
    assert first_steps(per_pixel(1e-6), 11 * s + est.RUN_START_S) == 10  # 10 calls (12: 12)
    assert first_steps(per_pixel(1e-6), 12 * s + est.RUN_START_S) == 12


def test_the_budget_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(est.FIXED_ENV, raising=False)
    monkeypatch.delenv(est.BUDGET_ENV, raising=False)
    assert est.default_budget_s() == est.BUDGET_S == 10.0
    monkeypatch.setenv(est.BUDGET_ENV, "3.5")
    assert est.default_budget_s() == 3.5
    for bad in ("soon", "-1", "nan", "0"):
        monkeypatch.setenv(est.BUDGET_ENV, bad)
        assert est.default_budget_s() == est.BUDGET_S
    monkeypatch.setenv(est.FIXED_ENV, "1")
    assert est.fixed_defaults() and est.default_budget_s() is None


def test_the_words_before_a_run():
    assert est.rough_seconds(0.4) == "under 1 s"
    assert est.rough_seconds(4.4) == "about 4 s"
    assert est.rough_seconds(33) == "about 35 s"
    assert est.rough_seconds(200) == "about 3 min"
    assert est.Estimate(4.2, 10, "CPU (2 threads)").text == \
        "about 4 s on this computer · CPU (2 threads)"


# ---------------------------------------------------------------- the pages


def _page(name: str, **state) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=180)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _estimates(at) -> list[str]:
    return [c.value for c in at.caption if "on this computer" in c.value]


def test_restore_shows_the_estimate_and_updates_it(user_models_dir):
    at = _page("2_Restore.py", lab_max_side=128, restore_steps=3)
    [before] = _estimates(at)
    assert before.startswith("Under 1 s on this computer · ")
    at.slider(key="restore_step").set_value(1000).run()
    at.number_input(key="restore_steps").set_value(500).run()
    [after] = _estimates(at)
    assert after != before and after.startswith("About ")


def test_repair_shows_an_estimate_beside_each_button(user_models_dir):
    at = _page("3_Repair.py", lab_max_side=128, repair_size=64)
    fill, clean = _estimates(at)
    at.number_input(key="repair_resample").set_value(10).run()
    at.number_input(key="repair_inpaint_steps").set_value(500).run()
    assert _estimates(at)[0] != fill and _estimates(at)[1] == clean


def test_create_shows_the_estimate(user_models_dir):
    at = _page("7_Create.py")
    [before] = _estimates(at)
    at.slider(key="create_steps").set_value(100).run()
    assert _estimates(at) != [before]


def test_first_visit_defaults_fit_the_budget_and_the_visitors_choice_stays(user_models_dir,
                                                                           monkeypatch):
    monkeypatch.delenv(est.FIXED_ENV, raising=False)
    monkeypatch.setenv(est.BUDGET_ENV, "0.001")  # nothing fits: every page its cheapest
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    at.switch_page("pages/2_Restore.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert (at.session_state["lab_max_side"], at.session_state["restore_steps"]) == \
        restore_app.DEFAULT_LADDER[-1]
    at.number_input(key="restore_steps").set_value(7).run()
    at.run()
    assert at.number_input(key="restore_steps").value == 7  # a rerun keeps the choice
    at.switch_page("pages/3_Repair.py").run()
    assert (at.session_state["repair_size"], at.session_state["repair_inpaint_steps"]) == \
        repair_app.DEFAULT_LADDER[-1]
    at.number_input(key="repair_inpaint_steps").set_value(35).run()
    at.run()
    assert at.number_input(key="repair_inpaint_steps").value == 35
    at.switch_page("pages/7_Create.py").run()
    assert at.session_state["create_steps"] == CREATE_LADDER[-1]
    at.switch_page("pages/2_Restore.py").run()  # and back: nothing was chosen again
    assert at.number_input(key="restore_steps").value == 7
    assert not at.exception, [e.message for e in at.exception]


def test_a_working_size_the_visitor_picked_is_kept(user_models_dir, monkeypatch):
    monkeypatch.delenv(est.FIXED_ENV, raising=False)
    monkeypatch.setenv(est.BUDGET_ENV, "0.001")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    at.switch_page("pages/1_Add_noise.py").run()
    assert at.session_state["lab_max_side"] == 512  # the shared start
    at.select_slider(key="w_noise_lab_max_side").set_value(384).run()
    at.switch_page("pages/2_Restore.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.session_state["lab_max_side"] == 384  # chosen: kept
    assert at.session_state["restore_steps"] == restore_app.DEFAULT_LADDER[-1][1]


def test_fixed_defaults_ignore_the_computer(user_models_dir, monkeypatch):
    monkeypatch.setenv(est.FIXED_ENV, "1")
    at = _page("2_Restore.py")
    assert (at.session_state["lab_max_side"], at.session_state["restore_steps"]) == (256, 25)
    at = _page("3_Repair.py")
    assert (at.session_state["repair_size"], at.session_state["repair_inpaint_steps"]) == (128, 50)
    assert _page("7_Create.py").session_state["create_steps"] == DEFAULT_STEPS
