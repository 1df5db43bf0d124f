"""Samplers against exact denoisers: an oracle for one image, and Gaussian data."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.maths.samplers import (
    SAMPLERS,
    StopSampling,
    edm_sigmas,
    schedule_sigmas,
    spaced_timesteps,
)
from diffusion_core.maths.schedules import make_schedule
from diffusion_core.tasks.restore import restore


class Oracle(torch.nn.Module):
    """D(y, sigma) = x0 for a one-image data set."""

    def __init__(self, x0):
        super().__init__()
        self.x0 = x0

    def forward(self, y, sigma):
        return self.x0.expand_as(y).clone()


class GaussianDenoiser(torch.nn.Module):
    """Exact E[x0 | y] for x0 ~ N(mu, s^2 I), y = x0 + sigma n."""

    def __init__(self, mu, s):
        super().__init__()
        self.mu, self.s = mu, s

    def forward(self, y, sigma):
        sig = torch.as_tensor(sigma, dtype=y.dtype).reshape(-1, *([1] * (y.dim() - 1)))
        k = self.s**2 / (self.s**2 + sig**2)
        return self.mu + k * (y - self.mu)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize("step", [1, 50, 400, 1000])
def test_oracle_returns_x0_from_any_step(name, step):
    sch = make_schedule("cosine", 1000)
    x0 = torch.rand(3, 8, 8) * 2 - 1
    res = restore(Oracle(x0[None]), x0, sch, step=step, steps=10, sampler=name, seed=1)
    assert torch.allclose(res.final, x0, atol=1e-4)


@pytest.mark.parametrize("name", ["ddpm", "heun", "dpmpp_2m", "ddim"])
def test_gaussian_data_moments(name):
    mu, s = 0.3, 0.5
    den = GaussianDenoiser(mu, s)
    g = torch.Generator().manual_seed(0)
    # DDPM replaces x0 by its posterior mean inside each step, which loses variance
    # c0^2 Var[x0 | x_t] per step: it is exact only in the fine-step limit (Ho et al. use 1000).
    # DDIM (first order) also shrinks the spread slightly at coarse steps.
    sigmas = edm_sigmas({"ddpm": 1000, "ddim": 300}.get(name, 40), 0.002, 80.0)
    x = torch.randn(20000, 1, generator=g, dtype=torch.float64) * sigmas[0].double()
    kw = {"generator": g}
    out = SAMPLERS[name](den, x, sigmas.double(), **kw)
    assert abs(out.mean().item() - mu) < 0.02
    assert abs(out.std().item() - s) / s < 0.04


def test_ddim_deterministic_and_invertible():
    den = GaussianDenoiser(0.1, 0.7)
    sigmas = edm_sigmas(200, 0.01, 20.0).double()[:-1]  # stop at sigma_min (no final jump)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(500, 1, generator=g, dtype=torch.float64) * sigmas[0]
    a = SAMPLERS["ddim"](den, x, sigmas)
    b = SAMPLERS["ddim"](den, x.clone(), sigmas)
    assert torch.equal(a, b)
    back = SAMPLERS["ddim"](den, a, sigmas.flip(0))  # run the ODE the other way
    assert torch.allclose(back, x, rtol=2e-2, atol=2e-2)


def test_step_bookkeeping():
    sch = make_schedule("linear", 1000)
    for t_start in (0, 1, 9, 299, 999):
        for steps in (1, 2, 5, 25, 1000):
            ts = spaced_timesteps(t_start, steps)
            assert len(ts) == min(steps, t_start + 1)
            assert ts[0] == t_start and (len(ts) == 1 or ts[-1] == 0)
            assert all(a > b for a, b in zip(ts, ts[1:]))
    x0 = torch.zeros(1, 4, 4)
    calls = []
    res = restore(Oracle(x0[None]), x0, sch, step=300, steps=25, sampler="ddim",
                  callback=lambda info: calls.append(info["i"]))
    assert calls == list(range(25)) and res.steps_run == 25 and len(res.frames) == 25
    sig, ts = schedule_sigmas(sch, 299, 25)
    assert len(sig) == 26 and sig[-1] == 0
    # step 0 returns the input untouched
    img = torch.rand(1, 4, 4)
    res0 = restore(Oracle(x0[None]), img, sch, step=0, steps=25)
    assert torch.equal(res0.final, img.clamp(-1, 1)) and res0.steps_run == 0


def test_stop_keeps_partial_result():
    sch = make_schedule("linear", 100)
    x0 = torch.zeros(1, 4, 4)

    def cb(info):
        if info["i"] == 3:
            raise StopSampling

    res = restore(Oracle(x0[None]), x0, sch, step=100, steps=10, callback=cb)
    assert res.steps_run == 4 and res.stopped
    assert torch.allclose(res.final, x0, atol=1e-5)


def test_ddim_eta1_matches_ddpm_in_distribution():
    den = GaussianDenoiser(-0.2, 0.4)
    sigmas = edm_sigmas(1000, 0.002, 80.0).double()
    x = torch.randn(20000, 1, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    x = x * sigmas[0]
    a = SAMPLERS["ddim"](den, x, sigmas, generator=torch.Generator().manual_seed(1), eta=1.0)
    b = SAMPLERS["ddpm"](den, x, sigmas, generator=torch.Generator().manual_seed(2))
    assert abs(a.mean() - b.mean()) < 0.02 and abs(a.std() - b.std()) < 0.02
    assert math.isclose(a.std().item(), 0.4, rel_tol=0.05)


def test_out_of_memory_falls_back_to_cpu_with_a_note():
    class FlakyOracle(torch.nn.Module):
        """Raises an out-of-memory error on its first call, like a full GPU would."""

        def __init__(self, x0):
            super().__init__()
            self.x0 = x0
            self.failed = False

        def forward(self, y, sigma):
            if not self.failed:
                self.failed = True
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return self.x0.expand_as(y).clone()

    sch = make_schedule("linear", 100)
    x0 = torch.rand(3, 8, 8) * 2 - 1
    den = FlakyOracle(x0[None])
    res = restore(den, x0, sch, step=50, steps=5, sampler="ddim")
    # the shared model was not moved or changed; a private copy finished the run
    assert "ran out of memory" in res.note and res.device == "cpu"
    assert res.steps_run == 5 and len(res.frames) == 5
    assert torch.allclose(res.final, x0, atol=1e-4)


def test_karras_spacing_same_count_and_ends_denser_near_clean():
    from diffusion_core.maths.samplers import default_spacing, karras_schedule_sigmas

    sch = make_schedule("linear", 1000)
    for t_start, steps in [(214, 10), (56, 5), (999, 25), (3, 10), (1, 2), (0, 4)]:
        u, ts_u = schedule_sigmas(sch, t_start, steps)
        k, ts_k = karras_schedule_sigmas(sch, t_start, steps)
        assert len(k) == len(u) and len(ts_k) == len(ts_u)
        assert float(k[0]) == pytest.approx(float(u[0])) and float(k[-2]) == pytest.approx(float(u[-2]))
        assert float(k[-1]) == 0.0 and all(float(a) > float(b) for a, b in zip(k[:-1], k[1:]))
        assert ts_k[0] == ts_u[0] and ts_k[-1] == ts_u[-1]
    u, _ = schedule_sigmas(sch, 214, 10)
    k, _ = karras_schedule_sigmas(sch, 214, 10)
    assert float(k[-3]) < float(u[-3])  # more of the levels near the clean end
    assert default_spacing("dpmpp_2m") == default_spacing("heun") == "karras"
    assert default_spacing("ddim") == default_spacing("ddpm") == "uniform"


def test_karras_spacing_makes_few_step_dpmpp_closer_to_the_exact_ode_solution():
    """Gaussian data N(0, s^2): the exact denoiser is linear and the probability-flow ODE from
    sigma_hi ends at x * s / sqrt(s^2 + sigma_hi^2). Ten DPM-Solver++ steps land closer to it
    on the Karras levels than on evenly spaced timesteps (the reason the app uses them)."""
    from diffusion_core.maths.samplers import karras_schedule_sigmas

    s_d = 0.5

    def den(x, sigma):
        sig = sigma.reshape(-1, 1, 1, 1).to(x.dtype)
        return x * s_d**2 / (s_d**2 + sig**2)

    sch = make_schedule("linear", 1000)
    g = torch.Generator().manual_seed(0)
    errs = {}
    for name, fn in (("uniform", schedule_sigmas), ("karras", karras_schedule_sigmas)):
        sig, _ = fn(sch, 214, 10)
        x = torch.randn(4, 3, 8, 8, generator=g, dtype=torch.float64) * math.sqrt(
            s_d**2 + float(sig[0]) ** 2)
        exact = x * s_d / math.sqrt(s_d**2 + float(sig[0]) ** 2)
        out = SAMPLERS["dpmpp_2m"](den, x.clone(), sig.double())
        errs[name] = float((out - exact).abs().max() / exact.abs().max())
    assert errs["karras"] < 0.5 * errs["uniform"], errs
