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
from tests.doubles import GaussianDenoiser, Oracle


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


# ---------------------------------------------------------------- the sampler contract


class Counting(torch.nn.Module):
    """Counts the model calls of a wrapped denoiser."""

    def __init__(self, den):
        super().__init__()
        self.den, self.calls = den, 0

    def forward(self, y, sigma):
        self.calls += 1
        return self.den(y, sigma)


def test_every_spec_describes_its_sampler():
    import inspect

    from diffusion_core.maths.samplers import (
        SAMPLER_COLOURS,
        SAMPLER_LABELS,
        SHORT_NAMES,
        SPACINGS,
        SPECS,
        Denoiser,
    )

    assert list(SPECS) == list(SAMPLERS) == list(SAMPLER_LABELS) == list(SHORT_NAMES)
    assert isinstance(GaussianDenoiser(), Denoiser) and isinstance(lambda x, s: x, Denoiser)
    colours = set()
    for name, spec in SPECS.items():
        assert spec.name == name and SAMPLERS[name] is spec.fn
        assert SAMPLER_LABELS[name] == spec.label and SHORT_NAMES[name] == spec.short_name
        assert spec.spacing in SPACINGS and SAMPLER_COLOURS[name] == spec.colour
        colours.add(spec.colour)
        # the options listed are exactly the keyword options the function takes
        params = set(inspect.signature(spec.fn).parameters) - {"denoiser", "x", "sigmas",
                                                                "generator", "callback"}
        assert params == set(spec.options), name
        # model calls per step, measured
        for n in (1, 2, 5):
            den = Counting(GaussianDenoiser())
            sigmas = edm_sigmas(n, 0.002, 80.0)
            spec.fn(den, torch.zeros(1, 1, 2, 2), sigmas, generator=torch.Generator())
            assert den.calls == spec.model_calls(n) == spec.calls_per_step * (n - 1) + 1, name
        # stochastic: fresh noise whatever the options (with its default options, measured)
        runs = [spec.fn(GaussianDenoiser(), torch.ones(1, 1, 4, 4), edm_sigmas(4, 0.002, 80.0),
                        generator=torch.Generator().manual_seed(k)) for k in (0, 1)]
        assert spec.stochastic == (not torch.equal(*runs)), name
    assert len(colours) == len(SPECS)  # one colour each in the charts


def test_sample_drops_only_the_options_a_sampler_does_not_take():
    from diffusion_core.maths.samplers import get_sampler, sample

    den = GaussianDenoiser(0.1, 0.5)
    sig = edm_sigmas(6, 0.002, 80.0)
    x = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(0)) * sig[0]
    heun = sample("heun", den, x, sig, eta=0.7)  # Heun takes no eta: dropped, no error
    assert torch.equal(heun, SAMPLERS["heun"](den, x, sig))
    with pytest.raises(TypeError):
        SAMPLERS["heun"](den, x, sig, eta=0.7)  # the function itself would refuse it

    def ddim(eta):
        return sample("ddim", den, x, sig, generator=torch.Generator().manual_seed(1), eta=eta)

    assert torch.equal(ddim(0.5), SAMPLERS["ddim"](den, x, sig, generator=torch.Generator()
                                                   .manual_seed(1), eta=0.5))
    assert not torch.equal(ddim(0.5), ddim(0.0))  # and DDIM does get it
    assert get_sampler("ddim").pick_options({"eta": 1, "churn": 2}) == {"eta": 1}
    with pytest.raises(ValueError, match="Unknown sampler"):
        sample("euler?", den, x, sig)
    sch = make_schedule("linear", 1000)
    x0 = torch.rand(3, 8, 8) * 2 - 1
    a = restore(den, x0, sch, step=200, steps=4, sampler="dpmpp_2m", eta=0.9, seed=1)
    b = restore(den, x0, sch, step=200, steps=4, sampler="dpmpp_2m", seed=1)
    assert torch.equal(a.final, b.final)


def test_one_step_record_at_every_layer(tmp_path):
    from dataclasses import FrozenInstanceError

    from diffusion_core.maths.samplers import StepInfo
    from diffusion_core.tasks.blind import blind_denoise
    from diffusion_core.tasks.inpaint import inpaint
    from diffusion_core.tasks.steps_study import sampler_vs_steps

    den = GaussianDenoiser(0.1, 0.5)
    x0 = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    seen: dict[str, list] = {}

    def keep(layer):
        return lambda info: seen.setdefault(layer, []).append(info)

    sig = edm_sigmas(3, 0.002, 80.0)
    SAMPLERS["ddpm"](den, x0[None] * 0, sig, generator=torch.Generator(), callback=keep("sampler"))
    sch = make_schedule("linear", 1000)
    restore(den, x0, sch, step=100, steps=3, callback=keep("restore"))
    m = torch.zeros(8, 8, dtype=torch.bool)
    m[2:5, 2:5] = True
    inpaint(den, x0, m, steps=3, callback=keep("inpaint"))
    blind_denoise(den, x0, sigma=0.2, mode="one_shot", callback=keep("blind"))
    sampler_vs_steps(den, x0, sch, 50, ["heun"], [2], seed=0, reference_steps=2,
                     callback=keep("study"))
    for layer, infos in seen.items():
        assert infos and all(type(i) is StepInfo for i in infos), layer
        first = infos[0]
        assert first.i == 0 and first.n >= 1 and first.sigma > 0, layer
        assert first["i"] == first.i and first.get("sigma") == first.sigma
        assert torch.allclose(first.eps, (first.x - first.denoised) / first.sigma)
    assert [i.i for i in seen["sampler"]] == [0, 1, 2] and seen["sampler"][0].step is None
    r = seen["restore"][0]
    assert r.step == 100 and r.x_t.shape == x0.shape and r.x0_hat.shape == x0.shape
    p = seen["inpaint"][-1]
    assert p.composite.shape == x0.shape and p.level is not None and p.jumps == 0
    assert seen["blind"][0].step > 0 and seen["blind"][0].n == 1
    s = seen["study"]
    assert s[-1].calls_done == s[-1].calls_total == s[-1].n == 2 + 3
    assert [i.row["steps"] for i in s if i.row is not None] == [2]
    assert s[0].phase == "reference" and s[-1].phase == "run" and s[-1].sampler == "heun"
    assert "row" in s[-1] and "row" not in s[0] and s[0].get("row", "none") == "none"
    with pytest.raises(KeyError):
        r["nope"]
    with pytest.raises(FrozenInstanceError):
        r.i = 3


def test_a_registered_sampler_is_everywhere():
    """One spec is all a new sampler needs: menus, the study and restore pick it up."""
    from diffusion_core.maths import samplers as smp
    from diffusion_core.tasks.steps_study import model_calls_for, short_name

    tables = [smp.SPECS, smp.SAMPLERS, smp.SAMPLER_LABELS, smp.SHORT_NAMES, smp.SAMPLER_COLOURS]
    saved = [dict(t) for t in tables]

    def euler(denoiser, x, sigmas, generator=None, callback=None):
        return smp.sample_ddim(denoiser, x, sigmas, generator, callback)

    try:
        smp.register_sampler(smp.SamplerSpec("euler", euler, "Euler (test)", "Euler", 1,
                                             "karras", (), "#000000"))
        assert smp.SAMPLER_LABELS["euler"] == "Euler (test)" and "euler" in smp.SAMPLERS
        assert short_name("euler") == "Euler" and model_calls_for("euler", 4) == 4
        assert smp.default_spacing("euler") == "karras"
        x0 = torch.rand(1, 8, 8) * 2 - 1
        res = restore(Oracle(x0[None]), x0, make_schedule("linear", 1000), step=80, steps=3,
                      sampler="euler")
        assert torch.allclose(res.final, x0, atol=1e-4)
        with pytest.raises(ValueError, match="spacing"):
            smp.register_sampler(smp.SamplerSpec("bad", euler, "b", "b", 1, "log"))
    finally:
        for t, s in zip(tables, saved):
            t.clear()
            t.update(s)


def test_generate_is_the_one_route_from_pure_noise(monkeypatch):
    """generate() draws N(0, sigma_max^2) and runs the sampler down the EDM levels; the
    generate command, the digits check and the training previews all go through it."""
    from diffusion_core.maths.samplers import generate

    den = GaussianDenoiser(0.2, 0.3)
    g = torch.Generator().manual_seed(7)
    sig = edm_sigmas(5)
    x = torch.randn(3, 1, 4, 4, generator=g) * sig[0]
    expected = SAMPLERS["ddpm"](den, x, sig, generator=g)
    assert torch.equal(generate(den, (3, 1, 4, 4), steps=5, sampler="ddpm", seed=7), expected)
    # one generator carries on across calls (batches), like one long draw would not; seeds match
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = [generate(den, (2, 1, 4, 4), 4, "ddim", generator=g1, eta=1.0) for _ in range(2)]
    b = [generate(den, (2, 1, 4, 4), 4, "ddim", generator=g2, eta=1.0) for _ in range(2)]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[0], a[1])

    import diffusion_core.cli as cli
    import diffusion_core.training.digits_check as digits_check
    import diffusion_core.training.train as train

    for mod in (cli, digits_check, train):
        assert mod.generate is generate  # the same function, not a copy
    calls = []

    def spy(*args, **kw):
        calls.append(args[1])
        return generate(*args, **kw)

    monkeypatch.setattr(train, "generate", spy)
    out = train.preview_samples(den, train.TrainConfig(kind="digits"), "cpu", n=2)
    assert calls == [(2, 1, 32, 32)] and out.shape == (2, 1, 32, 32)


def test_repaint_uses_the_shared_ddim_step(monkeypatch):
    import diffusion_core.tasks.inpaint as inp
    from diffusion_core.maths.samplers import ddim_step

    used = []

    def spy(*args, **kw):
        used.append(args[2:4])
        return ddim_step(*args, **kw)

    monkeypatch.setattr(inp, "ddim_step", spy)
    x0 = torch.rand(1, 8, 8) * 2 - 1
    m = torch.zeros(8, 8, dtype=torch.bool)
    m[:4] = True
    res = inp.inpaint(Oracle(x0), x0, m, steps=6, resample=2, jump_length=2)
    assert len(used) == res.calls == res.calls_planned
    assert used[-1][1] == 0.0  # the last step goes to the clean picture
    assert torch.allclose(res.final, x0, atol=1e-5)
