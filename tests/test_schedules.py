import math

import numpy as np
import pytest
import torch
from scipy import stats

from diffusion_core.maths.forward import draw_noise, mix_coefs, q_posterior, q_sample, x_at_step
from diffusion_core.maths.schedules import (
    SCHEDULE_ALIASES,
    SCHEDULE_LABELS,
    SCHEDULE_NOTES,
    SCHEDULES,
    canonical_schedule,
    clamp_T,
    cosine_alpha_bar,
    make_schedule,
)


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("T", [10, 50, 1000, 4000])
def test_alpha_bar_strictly_decreasing_in_unit_interval(name, T):
    s = make_schedule(name, T)
    ab = s.alpha_bar
    assert ab.dtype == np.float64 and len(ab) == T
    assert np.all(ab > 0) and np.all(ab <= 1)
    assert np.all(np.diff(ab) < 0)
    assert np.all(s.betas > 0) and np.all(s.betas < 1)
    np.testing.assert_allclose(s.snr, ab / (1 - ab))
    np.testing.assert_allclose(s.log_snr, np.log(s.snr), rtol=1e-10)
    np.testing.assert_allclose(s.sigmas, np.sqrt((1 - ab) / ab))


def test_cosine_alpha_bar_matches_formula():
    T = 1000
    s = make_schedule("cosine", T)
    t = np.arange(1, T + 1) / T
    f = np.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2 / math.cos(0.008 / 1.008 * math.pi / 2) ** 2
    # betas are clipped at 0.999 only at the very end; compare where no clipping happened
    ok = s.betas < 0.999
    np.testing.assert_allclose(s.alpha_bar[ok], f[ok], rtol=1e-9)
    np.testing.assert_allclose(cosine_alpha_bar(np.array([0.0])), [1.0])


def test_linear_is_ho_et_al_exactly_at_T1000():
    s = make_schedule("linear", 1000)
    assert np.max(np.abs(s.betas - np.linspace(1e-4, 0.02, 1000))) <= 1e-12
    assert s.betas[0] == 1e-4 and s.betas[-1] == 0.02
    # other T: both ends scaled by 1000 / T (Nichol & Dhariwal's rule)
    np.testing.assert_allclose(make_schedule("linear", 250).betas, np.linspace(4e-4, 0.08, 250),
                               rtol=0, atol=1e-15)


def test_linear_vp_is_the_same_curve_for_every_T_and_not_ho():
    s = make_schedule("linear_vp", 1000)
    assert math.isclose(make_schedule("linear_vp", 100).alpha_bar[-1], s.alpha_bar[-1], rel_tol=1e-9)
    assert math.isclose(make_schedule("linear_vp", 37).alpha_bar[-1], s.alpha_bar[-1], rel_tol=1e-9)
    # the difference the issue measured: beta_0 is 10 % above Ho et al.'s 1e-4
    assert math.isclose(s.betas[0], 1.0994395572027488e-4, rel_tol=1e-12)
    rel = np.abs(s.alpha_bar / make_schedule("linear", 1000).alpha_bar - 1)
    assert 0.06 < rel.max() < 0.08


def test_T_is_clamped_and_unknown_schedule_rejected():
    assert clamp_T(3) == 10 and clamp_T(10**6) == 4000
    with pytest.raises(ValueError):
        make_schedule("nope", 100)


def test_old_sigmoid_name_is_an_alias_for_chen():
    assert SCHEDULE_ALIASES == {"sigmoid": "sigmoid_chen"} and "sigmoid" not in SCHEDULES
    old = make_schedule("sigmoid", 300)
    assert old.name == "sigmoid_chen"
    np.testing.assert_array_equal(old.betas, make_schedule("sigmoid_chen", 300).betas)
    assert canonical_schedule("sigmoid") == "sigmoid_chen"
    assert canonical_schedule("cosine") == "cosine" and canonical_schedule("bogus") == "linear"
    # Chen's sigmoid is symmetric: half the signal power is left half-way (u = (t + 1) / T = 0.5)
    assert math.isclose(make_schedule("sigmoid_chen", 1000).alpha_bar[499], 0.5, rel_tol=1e-12)


def test_every_schedule_has_a_label_and_a_note():
    assert set(SCHEDULE_LABELS) == set(SCHEDULE_NOTES) == set(SCHEDULES)
    assert "diffusers" in SCHEDULE_NOTES["sigmoid_chen"] and "Chen" in SCHEDULE_LABELS["sigmoid_chen"]


def test_golden_numbers_tiny_schedule():
    s = make_schedule("linear_vp", 10)
    # closed form: alpha_bar(u) = exp(-(0.1 u + 0.5 * 19.9 u^2)) at u = (t + 1) / T
    u = np.arange(1, 11) / 10
    np.testing.assert_allclose(s.alpha_bar, np.exp(-(0.1 * u + 9.95 * u**2)), rtol=1e-12)
    assert s.t_for_sigma(s.sigmas[4]) == 4
    # Ho et al.'s line at T = 10: linspace(0.01, 2.0, 10), the betas past 1 capped at 0.999
    lin = make_schedule("linear", 10)
    np.testing.assert_allclose(lin.betas, [0.01, 0.2311111111111111, 0.4522222222222222,
                                           0.6733333333333333, 0.8944444444444444] + [0.999] * 5,
                               rtol=1e-12)
    assert math.isclose(lin.alpha_bar[-1], 1.437768969547331e-17, rel_tol=1e-9)


# (name, T, sum of betas, alpha_bar at t = 0, T // 4, T // 2, T - 1), computed once and kept
GOLDEN = [
    ("linear", 1000, 10.05, [0.9999, 0.5214230306185275, 0.07779665836502389, 4.035829765375676e-05]),
    ("linear", 50, 10.05, [0.998, 0.5048272064835336, 0.05492151159660928, 7.744765699226731e-06]),
    ("linear_vp", 1000, 9.983332022464566,
     [0.9998900560442797, 0.5210235951804659, 0.07827242180248171, 4.318574906034139e-05]),
    ("linear_vp", 50, 8.834034229762297,
     [0.9940378446120213, 0.4972710645767532, 0.06441041083555739, 4.318574906034135e-05]),
    ("cosine", 1000, 12.441496417056296,
     [0.999958715775178, 0.8458879864968829, 0.4922851724488026, 2.4287669070348542e-09]),
    ("cosine", 50, 6.537902164418104,
     [0.9982524864661346, 0.8356205769508873, 0.4627068620173182, 9.711930298712567e-07]),
    ("sigmoid_chen", 1000, 8.67037962082429,
     [0.9996997208002508, 0.8498630091830929, 0.49834281788206963, 3.0027919974932843e-07]),
    ("sigmoid_chen", 50, 5.474419461867655,
     [0.9936747784714357, 0.8407780440347115, 0.46689597351161877, 6.325221528564599e-06]),
]


@pytest.mark.parametrize("name,T,beta_sum,abars", GOLDEN, ids=lambda v: str(v)[:12])
def test_golden_numbers_every_schedule(name, T, beta_sum, abars):
    s = make_schedule(name, T)
    assert abs(s.betas.sum() - beta_sum) < 1e-9
    np.testing.assert_allclose(s.alpha_bar[[0, T // 4, T // 2, T - 1]], abars, rtol=1e-9)


def test_against_diffusers_ddpm_scheduler():
    diffusers = pytest.importorskip("diffusers")
    ref = diffusers.DDPMScheduler()  # Ho et al.'s defaults: 1000 steps, linear 1e-4 .. 0.02
    ours = make_schedule("linear", 1000)
    np.testing.assert_allclose(ours.betas, ref.betas.double().numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.alpha_bar, ref.alphas_cumprod.double().numpy(), rtol=1e-5)
    cos = diffusers.DDPMScheduler(beta_schedule="squaredcos_cap_v2")
    np.testing.assert_allclose(make_schedule("cosine", 1000).betas, cos.betas.double().numpy(),
                               rtol=1e-5, atol=1e-7)
    # diffusers' "sigmoid" is a different curve (betas on a sigmoid): not our sigmoid_chen
    geo = diffusers.DDPMScheduler(beta_schedule="sigmoid").alphas_cumprod.double().numpy()
    assert abs(geo[499] - 0.30193105660219516) < 1e-5
    assert abs(make_schedule("sigmoid_chen", 1000).alpha_bar[499] - geo[499]) > 0.15


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_q_sample_moments(name):
    s = make_schedule(name, 1000)
    x0 = torch.tensor([0.8, -0.3, 0.1], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    n = 200_000
    for t in (0, 100, 500, 900):
        eps = torch.randn(n, 3, generator=g, dtype=torch.float64)
        xt = q_sample(x0, t, eps, s)
        ab = s.alpha_bar[t]
        se_mean = math.sqrt((1 - ab) / n)
        assert torch.allclose(xt.mean(0), math.sqrt(ab) * x0, atol=5 * se_mean + 1e-12)
        var = xt.var(0)
        assert torch.allclose(var, torch.full((3,), 1 - ab, dtype=torch.float64),
                              rtol=0.02, atol=1e-9)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_last_step_is_gaussian(name):
    s = make_schedule(name, 1000)
    x0 = torch.linspace(-1, 1, 4096)  # a "picture" with lots of structure
    xt = q_sample(x0, s.T - 1, draw_noise(x0.shape, 3), s).numpy()
    assert stats.normaltest(xt).pvalue > 0.01
    assert stats.kstest(xt, "norm").pvalue > 0.01
    # and the clean picture itself is far from Gaussian
    assert stats.kstest(x0.numpy(), "norm").pvalue < 1e-6


def test_posterior_matches_bayes_on_1d_gaussian():
    """With x0 known, q(x_{t-1} | x_t, x0) is the Gaussian conditional of the joint of
    (x_{t-1}, x_t) given x0; compare with the closed-form coefficients."""
    s = make_schedule("cosine", 200)
    x0 = 0.7
    for t in (1, 50, 150):
        ab_prev, alpha = s.alpha_bar[t - 1], s.alphas[t]
        # x_{t-1} = sqrt(ab_prev) x0 + sqrt(1-ab_prev) e1 ; x_t = sqrt(alpha) x_{t-1} + sqrt(beta) e2
        m_prev, v_prev = math.sqrt(ab_prev) * x0, 1 - ab_prev
        m_t = math.sqrt(alpha) * m_prev
        v_t = alpha * v_prev + (1 - alpha)
        cov = math.sqrt(alpha) * v_prev
        xt = 0.3
        mean_bayes = m_prev + cov / v_t * (xt - m_t)
        var_bayes = v_prev - cov**2 / v_t
        mean, var = q_posterior(torch.tensor(x0, dtype=torch.float64),
                               torch.tensor(xt, dtype=torch.float64), t, s)
        assert math.isclose(float(mean), mean_bayes, rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(var, var_bayes, rel_tol=1e-9)


def test_posterior_sampling_statistics():
    """Monte Carlo: x_{t-1} drawn forward, conditioned on x_t near a value, has the
    posterior mean."""
    s = make_schedule("linear", 100)
    t = 40
    x0 = torch.tensor(0.5, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    n = 400_000
    x_prev = q_sample(x0, t - 1, torch.randn(n, generator=g, dtype=torch.float64), s)
    xt = math.sqrt(s.alphas[t]) * x_prev + math.sqrt(s.betas[t]) * torch.randn(
        n, generator=g, dtype=torch.float64)
    sel = (xt - 0.2).abs() < 0.01
    mean, var = q_posterior(x0, torch.tensor(0.2, dtype=torch.float64), t, s)
    assert abs(float(x_prev[sel].mean()) - float(mean)) < 0.01
    assert abs(float(x_prev[sel].var()) - var) / var < 0.1


def test_ui_steps():
    s = make_schedule("linear", 100)
    x0 = torch.ones(1, 4, 4)
    eps = draw_noise(x0.shape, 0)
    assert torch.equal(x_at_step(x0, eps, s, 0), x0)
    a, b = mix_coefs(s, 100)
    assert math.isclose(a * a + b * b, 1.0, rel_tol=1e-12)
    assert torch.allclose(x_at_step(x0, eps, s, 37), q_sample(x0, 36, eps, s))
    assert torch.equal(draw_noise((2, 3), 5), draw_noise((2, 3), 5))
    assert not torch.equal(draw_noise((2, 3), 5), draw_noise((2, 3), 6))
