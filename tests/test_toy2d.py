"""Tests for the "Why diffusion?" 2-D playground (diffusion_core.toy2d and its page)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from diffusion_core import toy2d
from tests.waiting import until

ROOT = Path(__file__).resolve().parents[1]

torch.set_num_threads(1)

TINY = toy2d.Budget(steps=12, batch_size=32, snapshot_every=5, snapshot_n=40)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- datasets


@pytest.mark.parametrize("name", [n for n in toy2d.DATASETS if n != "drawn"])
def test_dataset_counts_and_reproducibility(name):
    a = toy2d.make_dataset(name, 321, rng(1))
    b = toy2d.make_dataset(name, 321, rng(1))
    c = toy2d.make_dataset(name, 321, rng(2))
    assert a.points.shape == (321, 2)
    assert np.all(np.isfinite(a.points))
    assert np.array_equal(a.points, b.points)
    assert not np.allclose(a.points, c.points)
    assert a.name == name


def test_mode_datasets_expose_centres_and_std():
    ring = toy2d.make_dataset("ring", 4000, rng())
    assert ring.centres.shape == (8, 2) and ring.n_modes == 8
    np.testing.assert_allclose(np.linalg.norm(ring.centres, axis=1), 2.0)
    assert ring.std == pytest.approx(0.05)
    # every point is near its nearest centre, and every centre is used
    d = np.linalg.norm(ring.points[:, None] - ring.centres[None], axis=2)
    assert np.mean(d.min(1) <= 3 * ring.std) > 0.97
    assert len(np.unique(d.argmin(1))) == 8
    grid = toy2d.make_dataset("grid", 100, rng())
    assert grid.centres.shape == (25, 2)
    assert sorted(set(grid.centres[:, 0])) == [-2.0, -1.0, 0.0, 1.0, 2.0]
    for name in ("moons", "swiss_roll", "checkerboard"):
        assert toy2d.make_dataset(name, 10, rng()).centres is None


def test_drawn_dataset_jitters_around_clicked_points():
    clicks = [(0.0, 0.0), (1.0, 1.0), (1.0, 1.0), (-2.0, 0.5)]
    ds = toy2d.make_dataset("drawn", 600, rng(), points=clicks, std=0.1)
    assert ds.centres.shape == (3, 2)  # duplicate merged
    assert ds.std == 0.1 and ds.points.shape == (600, 2)
    d = np.linalg.norm(ds.points[:, None] - ds.centres[None], axis=2).min(1)
    assert np.all(d < 1.0)
    again = toy2d.make_drawn_dataset(clicks, 600, rng(), std=0.1)
    assert np.array_equal(ds.points, again.points)


@pytest.mark.parametrize("bad", [[], [(0.0, np.nan)], [(99.0, 0.0)], [[1.0, 2.0, 3.0]],
                                 [(i / 10, 0.0) for i in range(51)]])
def test_drawn_dataset_rejects_bad_points(bad):
    with pytest.raises(ValueError):
        toy2d.make_drawn_dataset(bad, 10, rng())


def test_parse_points():
    pts = toy2d.parse_points("1, 2\n\n# comment\n-1 -0.5\n3;4\n")
    np.testing.assert_array_equal(pts, [[1, 2], [-1, -0.5], [3, 4]])
    assert toy2d.parse_points("").shape == (0, 2)
    with pytest.raises(ValueError, match="Line 2"):
        toy2d.parse_points("1, 2\nfoo")
    with pytest.raises(ValueError, match="Line 1"):
        toy2d.parse_points("1, 2, 3")


def test_unknown_dataset_and_bad_n():
    with pytest.raises(ValueError):
        toy2d.make_dataset("spiral", 10, rng())
    with pytest.raises(ValueError):
        toy2d.make_dataset("ring", 0, rng())


# --------------------------------------------------------------------------- metrics


def test_data_itself_covers_all_modes():
    for name, k in (("ring", 8), ("grid", 25)):
        train, held = toy2d.make_split(name, rng(3), 2000, 2000)
        m = toy2d.evaluate(train.points, held)
        assert (m.modes_covered, m.n_modes, m.all_modes_covered) == (k, k, True)
        assert m.high_quality_share > 0.97
        assert m.energy_distance < 0.01


def test_all_samples_on_one_mode_cover_one_of_eight():
    ring = toy2d.make_dataset("ring", 1000, rng())
    one = ring.centres[3] + ring.std * rng(1).standard_normal((1000, 2))
    m = toy2d.evaluate(one, ring)
    assert m.modes_covered == 1 and m.n_modes == 8 and m.all_modes_covered is False
    cov = toy2d.mode_coverage(one, ring.centres, ring.std)
    assert cov.covered.tolist() == [False, False, False, True, False, False, False, False]


def test_coverage_threshold_ignores_a_few_stray_samples():
    ring = toy2d.make_dataset("ring", 1000, rng())
    samples = np.concatenate([np.repeat(ring.centres[:1], 996, 0), np.repeat(ring.centres[1:2], 4, 0)])
    assert toy2d.mode_coverage(samples, ring.centres, ring.std).n_covered == 1


def test_energy_distance_zero_for_itself_and_grows_with_shift():
    x = toy2d.make_dataset("ring", 800, rng()).points
    assert toy2d.energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    values = [toy2d.energy_distance(x, x + [s, 0.0]) for s in (0.1, 0.5, 1.0, 3.0)]
    assert all(a < b for a, b in zip(values, values[1:]))
    assert values[0] > 0
    assert toy2d.energy_distance(x, np.full((5, 2), np.nan)) == float("inf")


def test_metrics_without_modes():
    train, held = toy2d.make_split("moons", rng(), 500, 500)
    m = toy2d.evaluate(train.points, held)
    assert m.modes_covered is None and m.all_modes_covered is None
    assert m.high_quality_share is None and np.isfinite(m.energy_distance)


# --------------------------------------------------------------------------- models


def test_param_counts_are_comparable():
    counts = {k: v["total"] for k, v in toy2d.param_table().items()}
    assert set(counts) == set(toy2d.MODELS)
    assert max(counts.values()) / min(counts.values()) < 1.05


@pytest.mark.parametrize("kind", list(toy2d.MODELS))
def test_each_model_trains_a_tiny_budget(kind):
    data = toy2d.make_dataset("ring", 500, rng()).points
    calls = []
    result = toy2d.train_model(kind, data, TINY, generator=gen(),
                               callback=lambda s, losses, snap: calls.append((s, losses, snap)))
    assert result.steps_done == TINY.steps and not result.diverged
    assert [c[0] for c in calls] == list(range(1, TINY.steps + 1))
    assert [c[0] for c in calls if c[2] is not None] == [5, 10, 12]
    assert all(c[2].shape == (TINY.snapshot_n, 2) for c in calls if c[2] is not None)
    for key, values in result.history.items():
        assert len(values) == TINY.steps and np.all(np.isfinite(values)), key
    samples = result.sample(77, gen(1))
    assert samples.shape == (77, 2) and np.all(np.isfinite(samples))
    assert result.train_seconds > 0


def test_gan_settings_are_the_documented_ones():
    """bench/results/toy2d_seeds.md and the GAN's docstring state these settings."""
    gan = toy2d.GAN(gen())
    assert gan.z_dim == 8 and gan.d_steps == 1
    linear = [(m.in_features, m.out_features) for m in gan.gen if isinstance(m, torch.nn.Linear)]
    assert linear == [(8, 128), (128, 128), (128, 128), (128, 2)]
    linear = [(m.in_features, m.out_features) for m in gan.disc if isinstance(m, torch.nn.Linear)]
    assert linear == [(2, 128), (128, 128), (128, 128), (128, 1)]
    assert all(m.negative_slope == 0.2 for m in gan.disc if isinstance(m, torch.nn.LeakyReLU))
    g, d = gan.opt_g.param_groups[0], gan.opt_d.param_groups[0]
    assert isinstance(gan.opt_g, torch.optim.Adam) and isinstance(gan.opt_d, torch.optim.Adam)
    assert (g["lr"], d["lr"]) == (2e-4, 1e-3)  # two time-scale update rule
    assert g["betas"] == d["betas"] == (0.5, 0.999)
    wgan = toy2d.WGANGP(gen())  # WGAN-GP keeps one rate for generator and critic
    assert wgan.opt_g.param_groups[0]["lr"] == wgan.opt_d.param_groups[0]["lr"] == 1e-4
    assert wgan.opt_d.param_groups[0]["betas"] == (0.5, 0.9)
    assert "G lr 2e-4, D lr 1e-3" in (ROOT / "bench" / "results" / "toy2d_seeds.md").read_text()
    assert "Heusel" in toy2d.gan.__doc__


def test_gan_settings_can_be_changed_for_the_variants():
    gan = toy2d.GAN(gen(), depth=2, z_dim=256, disc_depth=1, disc_act="relu", lr=1e-4,
                    disc_lr=None, d_steps=5)
    assert gan.opt_d.param_groups[0]["lr"] == 1e-4 and gan.d_steps == 5
    assert sum(isinstance(m, torch.nn.Linear) for m in gan.disc) == 2
    assert any(isinstance(m, torch.nn.ReLU) for m in gan.disc)
    data = toy2d.make_dataset("ring", 500, rng()).points
    one = toy2d.train_gan(data, TINY, generator=gen(3)).sample(20, gen(9))
    five = toy2d.train_gan(data, TINY, generator=gen(3), d_steps=5).sample(20, gen(9))
    assert not np.allclose(one, five)


def test_training_is_reproducible_and_seed_dependent():
    data = toy2d.make_dataset("ring", 500, rng()).points
    a = toy2d.train_vae(data, TINY, generator=gen(5)).sample(20, gen(9))
    b = toy2d.train_vae(data, TINY, generator=gen(5)).sample(20, gen(9))
    c = toy2d.train_vae(data, TINY, generator=gen(6)).sample(20, gen(9))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_side_by_side_matches_training_alone():
    data = toy2d.make_dataset("ring", 500, rng()).points
    seen = set()
    both = toy2d.train_side_by_side(data, ("gan", "diffusion"), TINY, seed=4,
                                    callback=lambda k, s, losses, snap: seen.add(k))
    assert seen == {"gan", "diffusion"}
    alone = toy2d.train_gan(data, TINY, generator=toy2d.train_generator(4, "gan"))
    np.testing.assert_allclose(both["gan"].sample(30, gen(1)), alone.sample(30, gen(1)))


def test_diffusion_views():
    data = toy2d.make_dataset("ring", 500, rng()).points
    res = toy2d.train_diffusion(data, TINY, generator=gen())
    T = res.n_steps
    np.testing.assert_allclose(res.forward_noised(data[:50], 0, gen()), data[:50], atol=1e-5)
    noised = res.forward_noised(data, T, gen())
    # at t = T the cloud has forgotten the ring: close to a round Gaussian around the mean
    assert np.linalg.norm(noised.mean(0) - data.mean(0)) < 0.3
    assert abs(np.linalg.norm(noised - data.mean(0), axis=1).mean() / res.normaliser.scale
               - np.sqrt(np.pi / 2)) < 0.15
    with pytest.raises(ValueError):
        res.forward_noised(data, T + 1, gen())
    ts, paths = res.reverse_trajectories(6, gen())
    assert ts[0] == T and ts[-1] == 0 and paths.shape == (T + 1, 6, 2)
    ts, paths = res.reverse_trajectories(6, gen(), method="ddim", steps=10)
    assert len(ts) == 11 and paths.shape == (11, 6, 2)
    assert res.sample(10, gen(), method="ddim", steps=10).shape == (10, 2)
    with pytest.raises(ValueError):
        res.sample(10, gen(), method="euler")


def test_budget_is_clamped():
    b = toy2d.Budget(steps=10**9, batch_size=-3, snapshot_every=0, snapshot_n=10**9).clamped()
    assert 1 <= b.steps <= 20_000 and b.batch_size >= 8
    assert 1 <= b.snapshot_every <= b.steps and b.snapshot_n <= 5000
    assert toy2d.Budget(steps=900).clamped(max_steps=300).steps == 300


def test_run_seeds_tiny():
    messages = []
    study = toy2d.run_seeds("ring", [0, 1], ("vae", "diffusion"), toy2d.Budget(steps=5, batch_size=16),
                            n_train=200, n_eval=200, n_samples=200,
                            progress=lambda d, t, m: messages.append((d, t)))
    assert len(study.runs) == 4 and messages[-1] == (4, 4)
    s = study.summary()
    assert set(s) == {"vae", "diffusion"} and s["vae"]["n_modes"] == 8
    assert 0.0 <= s["diffusion"]["all_modes_share"] <= 1.0
    assert study.to_dict()["runs"][0]["seed"] == 0
    # model_kwargs reaches the model it names (and only that one)
    slow = toy2d.run_seeds("ring", [0], ("vae", "diffusion"), toy2d.Budget(steps=5, batch_size=16),
                           n_train=200, n_eval=200, n_samples=200,
                           model_kwargs={"vae": {"lr": 1e-9}})
    assert slow.runs[0].metrics != study.runs[0].metrics
    assert slow.runs[1].metrics == study.runs[1].metrics


@pytest.mark.slow
def test_diffusion_covers_all_ring_modes_over_ten_seeds():
    study = toy2d.run_seeds("ring", range(10), ("diffusion",))
    covered = [r.metrics.modes_covered for r in study.runs]
    assert sum(c == 8 for c in covered) >= 9, covered


@pytest.mark.slow
def test_gan_trains_on_the_ring_over_ten_seeds():
    """issue 21: the GAN trains (its samples lie on modes: high-quality share >= 0.5) in at
    least 7 of 10 seeds; how many modes it then covers is reported, not pinned."""
    study = toy2d.run_seeds("ring", range(10), ("gan",))
    hq = [r.metrics.high_quality_share for r in study.runs]
    assert sum(h >= 0.5 for h in hq) >= 7, hq


# --------------------------------------------------------------------------- page


def test_page_trains_and_shows_metrics():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / "5_Why_diffusion.py"), default_timeout=120)
    at.run()
    assert not at.exception
    at.number_input(key="toy2d_steps").set_value(20)
    at.run()
    at.button(key="toy2d_train").click()
    at.run()
    assert not at.exception, at.exception
    job = at.session_state["toy2d_job"]  # the training runs in the background
    assert job.wait(120) and job.state == "done", job.error
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["toy2d_results"] is job.result
    frames = [df.value for df in at.dataframe]
    assert any("Modes covered" in f.columns for f in frames)


# --------------------------------------------------------------------------- background jobs


def _until(cond, timeout: float = 60.0) -> bool:
    return until(cond, timeout)


def test_compare_job_reports_live_samples_and_scores_the_models():
    from diffusion_core.app.toy2d import CompareRequest, compare_progress, metrics_rows

    form = CompareRequest.from_form({"toy2d_dataset": toy2d.DATASETS["ring"], "toy2d_steps": 40,
                                     "toy2d_seed": 3})
    assert form.dataset == "ring" and form.kinds == toy2d.DEFAULT_MODELS and form.steps == 40
    job = form.compare_job().start()
    assert job.wait(120) and job.state == "done", job.error
    snap = job.snapshot()
    assert snap["steps"] == {k: 40 for k in toy2d.DEFAULT_MODELS} and snap["done_steps"] == 120
    assert all(len(snap["history"][k]) and len(snap["samples"][k]) for k in form.kinds)
    assert compare_progress(snap)[0] == 1.0
    out = job.result
    assert out["seed"] == 3 and set(out["metrics"]) == set(form.kinds)
    assert [r["Model"] for r in metrics_rows(out)] == [toy2d.MODELS[k].label for k in form.kinds]
    # the same seed gives the same models as training them in the foreground
    alone = toy2d.train_side_by_side(out["train"].points, form.kinds, form.budget, seed=3)
    assert alone["vae"].history == out["results"]["vae"].history


def test_compare_job_publishes_the_live_view_at_snapshots_not_every_step():
    """issue 21: the page's live plots change every few hundred steps (every 200 at the
    defaults), not every step; the job trains with one PyTorch thread."""
    from diffusion_core.app.toy2d import CompareRequest
    from diffusion_core.jobs.toy2d import THREADS, CompareJob

    defaults = CompareRequest.from_form({"toy2d_dataset": toy2d.DATASETS["ring"]})
    assert defaults.steps == 2000 and defaults.budget.snapshot_every == 200

    handed: list[tuple[dict, dict]] = []  # (steps, losses per model) at each hand-over
    threads: set[int] = set()

    class Watched(CompareJob):
        def update(self, **fields):
            if "steps" in fields:
                handed.append((dict(fields["steps"]), {k: len(h.get("loss", h.get("generator", [])))
                                                       for k, h in fields["history"].items()}))
            super().update(**fields)

        def _on_step(self, kind, step, losses, snapshot):
            threads.add(torch.get_num_threads())
            super()._on_step(kind, step, losses, snapshot)

    job = Watched("ring", ("gan", "vae"), toy2d.Budget(steps=60, batch_size=32, snapshot_every=20),
                  seed=1).start()
    assert job.wait(120) and job.state == "done", job.error
    assert threads == {THREADS} == {1}
    assert len(handed) == 6  # 3 per model: steps 20, 40 and 60, never in between
    for steps, losses in handed:
        assert all(s in (0, 20, 40, 60) for s in steps.values()), steps
        assert losses == steps  # every step's losses so far, no more, no fewer
    snap = job.snapshot()
    assert snap["steps"] == {"gan": 60, "vae": 60} and len(snap["history"]["vae"]["kl"]) == 60
    assert snap["history"]["gan"] == job.result["results"]["gan"].history  # nothing lost


def test_compare_job_stops_and_keeps_what_it_drew():
    from diffusion_core.jobs.toy2d import CompareJob

    job = CompareJob("ring", ("gan", "diffusion"), toy2d.Budget(steps=4000, snapshot_every=10),
                     seed=0).start()
    assert _until(lambda: job.snapshot()["done_steps"] >= 30)
    job.stop()
    assert job.wait(60) and job.state == "stopped" and job.result is None
    snap = job.snapshot()
    assert 30 <= snap["done_steps"] < 8000 and snap["samples"]


def test_seeds_job_runs_and_stops():
    from diffusion_core.jobs.toy2d import SeedsJob

    budget = toy2d.Budget(steps=5, batch_size=16)
    job = SeedsJob("ring", [0, 1], ("vae",), budget, label="Ring").start()
    assert job.wait(120) and job.state == "done", job.error
    assert len(job.result["study"].runs) == 2 and job.result["label"] == "Ring"
    assert job.snapshot()["done_runs"] == 2
    slow = SeedsJob("ring", range(50), ("diffusion",), toy2d.Budget(steps=200)).start()
    assert _until(lambda: slow.snapshot()["done_runs"] >= 1)
    slow.stop()
    assert slow.wait(60) and slow.state == "stopped" and slow.result is None
    assert slow.snapshot()["done_runs"] < 50


def test_drawn_points_are_checked():
    from diffusion_core.app.toy2d import CompareRequest

    form = {"toy2d_dataset": toy2d.DATASETS["drawn"], "toy2d_points_text": "0, 0\n1, 1"}
    ok = CompareRequest.from_form(form)
    assert ok.problem is None and ok.drawn_points == 2 and ok.drawn_how == "typed"
    picked = CompareRequest.from_form(form, selected=[{"x": 0.5, "y": -1.0}])
    assert picked.drawn_points == 1 and picked.drawn_how == "selected"
    bad = CompareRequest.from_form(dict(form, toy2d_points_text="nonsense"))
    assert bad.problem and not bad.dataset_kwargs


def test_page_stop_button_and_coming_back():
    from streamlit.testing.v1 import AppTest

    page = str(ROOT / "pages" / "5_Why_diffusion.py")
    at = AppTest.from_file(page, default_timeout=120)
    at.run()
    at.number_input(key="toy2d_steps").set_value(4000)
    at.run()
    at.button(key="toy2d_train").click().run()
    assert not at.exception, at.exception
    job = at.session_state["toy2d_job"]
    try:
        assert not job.done and at.button(key="toy2d_train").disabled
        assert _until(lambda: job.snapshot()["done_steps"] >= 10)
        again = AppTest.from_file(page, default_timeout=120)  # leave and come back
        again.session_state["toy2d_job"] = job
        again.run()
        assert not again.exception, again.exception
        assert any("side by side" in str(p.proto) for p in again.get("progress"))
        again.button(key=f"toy2d_stop_{job.id}").click().run()
        assert job.wait(60) and job.state == "stopped"
    finally:
        job.stop()
    at.run()
    assert not at.exception, at.exception
    assert any("Stopped" in w.value for w in at.warning)
    assert not at.button(key="toy2d_train").disabled
