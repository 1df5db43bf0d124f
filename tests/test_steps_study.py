"""The sampler-versus-steps study: bookkeeping, reference agreement and the summary sentence.

Exact denoisers only (an oracle for one image and Gaussian data), and no timing assertions:
speed is measured by bench/speed.py, not asserted here.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from diffusion_core.jobs.study import StudyJob
from diffusion_core.maths.forward import step_for_sigma
from diffusion_core.maths.samplers import SHORT_NAMES
from diffusion_core.maths.schedules import make_schedule
from diffusion_core.tasks.steps_study import (
    effective_steps,
    model_calls_for,
    plain_words_summary,
    planned_calls,
    sampler_vs_steps,
    steps_to_reach,
)
from tests.doubles import Failing, GaussianDenoiser, Oracle


@pytest.fixture()
def image():
    g = torch.Generator().manual_seed(3)
    return torch.rand(3, 16, 16, generator=g) * 2 - 1


SCHED = make_schedule("linear", 1000)
STEP = step_for_sigma(SCHED, 2 * 50 / 255)  # 115: every step count below is possible


def test_rows_bookkeeping_counts_model_calls(image):
    samplers, steps = ["ddim", "heun", "dpmpp_2m", "ddpm"], [1, 2, 5, 10]
    rows = sampler_vs_steps(GaussianDenoiser(), image, SCHED, STEP, samplers, steps, seed=0,
                            reference_steps=40)
    assert [(r["sampler"], r["steps"]) for r in rows] == [(s, k) for s in samplers for k in steps]
    for r in rows:
        calls = 2 * r["steps"] - 1 if r["sampler"] == "heun" else r["steps"]
        assert r["model_calls"] == calls == model_calls_for(r["sampler"], r["steps"])
        assert r["steps_requested"] == r["steps"]
        assert r["reference_steps"] == 40
        assert r["label"] == SHORT_NAMES[r["sampler"]]
        assert math.isfinite(r["psnr"]) and math.isfinite(r["psnr_vs_reference"])
        assert r["seconds"] >= 0 and -1 <= r["ssim"] <= 1
    heun = {r["steps"]: r["model_calls"] for r in rows if r["sampler"] == "heun"}
    assert heun == {1: 1, 2: 3, 5: 9, 10: 19}


def test_deterministic_samplers_approach_the_reference(image):
    rows = sampler_vs_steps(GaussianDenoiser(), image, SCHED, STEP, ["ddim", "dpmpp_2m"],
                            [1, 5, 25], seed=1, reference_steps=100)
    for s in ("ddim", "dpmpp_2m"):
        agree = [r["psnr_vs_reference"] for r in rows if r["sampler"] == s]
        assert agree == sorted(agree), agree  # more steps, closer to the long run
        assert agree[-1] > 35


def test_oracle_every_run_is_the_original(image):
    rows = sampler_vs_steps(Oracle(image[None]), image, SCHED, STEP, ["ddim", "heun"], [1, 3],
                            seed=0, reference_steps=10)
    assert all(r["psnr"] == float("inf") or r["psnr"] > 60 for r in rows)
    assert all(not math.isnan(r["psnr_vs_reference"]) for r in rows)


def test_steps_are_capped_by_the_start_and_not_repeated(image):
    step = 4  # only 4 noise steps from the clean picture: 5, 10 and 250 all mean 4
    assert effective_steps(step, 250) == 4
    rows = sampler_vs_steps(GaussianDenoiser(), image, SCHED, step, ["ddim", "heun"],
                            [1, 2, 5, 10], seed=0)
    assert [(r["sampler"], r["steps"]) for r in rows] == [
        ("ddim", 1), ("ddim", 2), ("ddim", 4), ("heun", 1), ("heun", 2), ("heun", 4)]
    assert rows[0]["reference_steps"] == 4
    # DDIM at the reference's own length is the reference itself
    assert rows[2]["psnr_vs_reference"] == float("inf")
    assert planned_calls(step, ["ddim", "heun"], [1, 2, 5, 10]) == 4 + (1 + 2 + 4) + (1 + 3 + 7)


def test_progress_callback_and_stop(image):
    seen = []
    rows = sampler_vs_steps(GaussianDenoiser(), image, SCHED, STEP, ["ddim"], [1, 2], seed=0,
                            reference_steps=8, callback=seen.append)
    assert seen[-1]["calls_done"] == seen[-1]["calls_total"] == 8 + 1 + 2
    assert [i["row"]["steps"] for i in seen if i["row"] is not None] == [1, 2]
    assert len(rows) == 2
    stopped = sampler_vs_steps(GaussianDenoiser(), image, SCHED, STEP, ["ddim"], [1, 2], seed=0,
                               reference_steps=8, should_stop=lambda: True)
    assert stopped == []


def test_unknown_sampler_is_refused(image):
    with pytest.raises(ValueError, match="Unknown sampler"):
        sampler_vs_steps(GaussianDenoiser(), image, SCHED, STEP, ["euler?"], [1], seed=0)


def test_summary_names_a_sampler(image):
    rows = sampler_vs_steps(GaussianDenoiser(), image, SCHED, STEP, ["ddim", "dpmpp_2m", "heun"],
                            [1, 2, 5, 10, 25], seed=0, reference_steps=60)
    text = plain_words_summary(rows)
    assert "within 0.3 dB of its best" in text
    assert any(name in text for name in ("DDIM", "DPM-Solver++", "Heun"))
    first = steps_to_reach(rows, "dpmpp_2m")
    assert f"{first['steps']} step" in text
    assert plain_words_summary([]) == "Nothing was measured yet."


def test_summary_sentence_format():
    rows = [
        {"sampler": "dpmpp_2m", "steps": k, "model_calls": k, "psnr": p, "psnr_vs_reference": a,
         "reference_steps": 250}
        for k, p, a in [(1, 25.0, 20.0), (5, 29.0, 30.0), (10, 29.9, 38.0), (25, 30.0, 45.0)]
    ]
    text = plain_words_summary(rows)
    assert text.startswith("DPM-Solver++ reaches within 0.3 dB of its best (30.0 dB) with 10 steps")
    assert "250-step DDIM" in text and "DPM-Solver++ with 10 steps." in text


def test_study_job_runs_in_the_background(image):
    job = StudyJob(GaussianDenoiser(), image, SCHED, STEP, ["ddim", "heun"], [1, 2],
                   reference_steps=5).start()
    assert job.wait(60)
    assert job.state == "done", job.error
    assert [(r["sampler"], r["steps"]) for r in job.rows] == [
        ("ddim", 1), ("ddim", 2), ("heun", 1), ("heun", 2)]
    snap = job.snapshot()
    assert snap["calls_done"] == snap["total"] == 5 + 3 + 4


def test_study_job_reports_failures_as_a_message(image):
    job = StudyJob(Failing(RuntimeError("boom")), image, SCHED, STEP, ["ddim"], [1],
                   reference_steps=3).start()
    assert job.wait(30)
    assert job.state == "failed" and "boom" in job.error


def test_channels_last_speed_option_gives_the_same_numbers():
    """The EDMDenoiser channels_last option (used by bench/speed.py): same outputs to float
    rounding, for RGB and gray inputs and odd sizes, and it can be switched off again."""
    from diffusion_core.maths.precond import EDMDenoiser
    from diffusion_core.models.nets import DenoiserUNet

    torch.manual_seed(0)
    net = DenoiserUNet(base=8, mults=(1, 2), blocks=(1, 1), emb_dim=16)
    for p in net.parameters():  # the zero-initialised layers would hide any difference
        torch.nn.init.normal_(p, std=0.1)
    plain = EDMDenoiser(net)
    fast = EDMDenoiser(copy.deepcopy(net), channels_last=True)
    assert fast.channels_last and not plain.channels_last
    with torch.inference_mode():
        for shape in [(2, 3, 24, 20), (1, 1, 17, 30)]:
            y = torch.randn(shape)
            a, b = plain(y, torch.tensor([0.3] * shape[0])), fast(y, torch.tensor([0.3] * shape[0]))
            assert b.shape == a.shape and b.is_contiguous()
            assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()
    fast.use_channels_last(False)
    assert not fast.channels_last
    assert all(p.is_contiguous() for p in fast.parameters())
