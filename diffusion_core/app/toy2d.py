"""The "Why diffusion?" page: its form as a :class:`CompareRequest`, the points a visitor
draws, and the words, tables and numbers it shows about GAN, VAE and diffusion in 2-D.
The runs are :mod:`diffusion_core.jobs.toy2d`. No streamlit here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from diffusion_core import toy2d
from diffusion_core.jobs.toy2d import CompareJob, SeedsJob
from diffusion_core.units import clamp_int

STEPS_MIN, STEPS_MAX = 20, 4000
SEED_MAX = 1_000_000
N_SEED_RUNS = 10
#: The live view (samples and losses of each model) is redrawn this many times per run: every
#: 200 steps at the default 2,000 (the job publishes at the snapshots, never per step).
SNAPSHOTS_PER_RUN = 10
N_TRAJECTORIES, N_PATHS_DRAWN = 300, 12
COLOURS = {"gan": "#d62728", "wgan_gp": "#9467bd", "vae": "#1f77b4", "diffusion": "#2ca02c"}
DEFAULT_DRAWN = "-1.5, 1.5\n1.5, 1.5\n0, 0\n-1.5, -1.5\n1.5, -1.5"
GRID = np.stack(np.meshgrid(np.arange(-3.0, 3.01, 0.5), np.arange(-3.0, 3.01, 0.5)),
                -1).reshape(-1, 2)  # the points a visitor can pick to draw a dataset

CAPTIONS = {
    "gan": (
        "**GAN.** A generator tries to fool a discriminator. Its two losses see-saw instead "
        "of going down together: each network's progress is the other's setback. When it "
        "trains, its points land sharply on clusters, but often on only some of them: once "
        "the generator finds a few spots that fool the discriminator, it puts its points "
        "there and forgets the other clusters. That is **mode collapse**."
    ),
    "wgan_gp": (
        "**WGAN-GP.** A GAN with a better-behaved referee (a Wasserstein critic with a "
        "gradient penalty). It spreads over the data instead of collapsing, but in the same "
        "number of generator steps its points stay blurrier, and each step costs more: the "
        "critic takes five steps for every generator step."
    ),
    "vae": (
        "**VAE.** Squeezes each point into a small code and learns to decode it back. It "
        "covers the data but is **blurry**: to turn a smooth cloud of codes into separate "
        "clusters it has to pass through the gaps in between, so samples smear between the "
        "clusters."
    ),
    "diffusion": (
        "**Diffusion.** Learns one easy thing: how to remove a little noise. To make a sample it "
        "starts from pure noise and denoises step by step. Its loss goes steadily down, it "
        "has no opponent to fool and no code to squeeze through, so it tends to find every "
        "cluster and keep it sharp. The price: many small steps per sample."
    ),
}


@dataclass
class CompareRequest:
    """The form, checked: which dataset (by its label), how long, which seed, which models,
    and for a drawn dataset its points (or why they cannot be used)."""

    label: str
    steps: int
    seed: int
    with_wgan: bool = False
    dataset_kwargs: dict = field(default_factory=dict)
    problem: str | None = None  # why the drawn points cannot be used
    drawn_how: str = ""  # "selected" or "typed"

    @property
    def dataset(self) -> str:
        names = {v: k for k, v in toy2d.DATASETS.items()}
        return names.get(self.label, "ring")

    @property
    def kinds(self) -> tuple[str, ...]:
        return ("gan", "wgan_gp", "vae", "diffusion") if self.with_wgan else toy2d.DEFAULT_MODELS

    @property
    def budget(self) -> toy2d.Budget:
        return toy2d.Budget(steps=self.steps, snapshot_every=max(1, self.steps // SNAPSHOTS_PER_RUN),
                            snapshot_n=400).clamped(max_steps=STEPS_MAX)

    @classmethod
    def from_form(cls, form: Mapping[str, Any], selected=None) -> CompareRequest:
        """``toy2d_dataset`` (a label), ``toy2d_steps``, ``toy2d_seed``, ``toy2d_wgan`` and,
        for the drawn dataset, ``selected`` grid points or ``toy2d_points_text``."""
        req = cls(form.get("toy2d_dataset") or "", clamp_int(form.get("toy2d_steps"), STEPS_MIN,
                                                             STEPS_MAX, toy2d.Budget().steps),
                  clamp_int(form.get("toy2d_seed"), 0, SEED_MAX, 0), bool(form.get("toy2d_wgan")))
        if req.dataset == "drawn":
            req.take_points(selected, form.get("toy2d_points_text", DEFAULT_DRAWN))
        return req

    def take_points(self, selected, text: str) -> None:
        """Use the ``selected`` grid points (``[{"x": .., "y": ..}, ...]``) or, without any,
        the typed ``text`` (one ``x, y`` per line)."""
        try:
            pts = (np.array([(p["x"], p["y"]) for p in selected], dtype=float) if selected
                   else toy2d.parse_points(text))
            toy2d.make_drawn_dataset(pts, 10, np.random.default_rng(0))  # validate early
        except ValueError as exc:
            self.problem = str(exc)
            return
        self.dataset_kwargs = {"points": pts}
        self.drawn_how = "selected" if selected else "typed"

    @property
    def drawn_points(self) -> int:
        return len(self.dataset_kwargs.get("points", ()))

    def compare_job(self, alive=None) -> CompareJob:
        return CompareJob(self.dataset, self.kinds, self.budget, self.seed, self.dataset_kwargs,
                          self.label, alive=alive)

    def seeds_job(self, alive=None) -> SeedsJob:
        return SeedsJob(self.dataset, range(N_SEED_RUNS), self.kinds, self.budget,
                        self.dataset_kwargs, self.label, alive=alive)


# --------------------------------------------------------------------------- numbers


def axis_ranges(points: np.ndarray) -> tuple[list[float], list[float]]:
    lo, hi = points.min(0), points.max(0)
    pad = 0.15 * float((hi - lo).max()) + 0.3
    return [lo[0] - pad, hi[0] + pad], [lo[1] - pad, hi[1] + pad]


def compare_progress(snap: dict) -> tuple[float, str]:
    """(share done, words) of a side-by-side training."""
    if snap["state"] in ("new", "waiting"):
        return 0.0, "Waiting: another run is using the computer; yours starts next."
    total = max(snap["total"] * len(snap["kinds"]), 1)
    return snap["done_steps"] / total, "Training the models side by side..."


def seeds_progress(snap: dict) -> tuple[float, str]:
    if snap["state"] in ("new", "waiting"):
        return 0.0, "Waiting: another run is using the computer; yours starts next."
    done, total = snap["done_runs"], max(snap["total_runs"], 1)
    return done / total, f"{done}/{total}: {snap['message'] or 'Starting...'}"


def panel_title(stored: dict, kind: str) -> str:
    m = stored["metrics"][kind]
    title = toy2d.MODELS[kind].label
    return title + (f" - {m.modes_covered}/{m.n_modes} modes" if m.n_modes is not None else "")


def metrics_rows(stored: dict) -> list[dict]:
    rows = []
    for kind in stored["kinds"]:
        m, r = stored["metrics"][kind], stored["results"][kind]
        rows.append({
            "Model": toy2d.MODELS[kind].label,
            "Parameters": f"{r.param_counts['total']:,}",
            "Modes covered": "n/a" if m.n_modes is None else f"{m.modes_covered} / {m.n_modes}",
            "High-quality share": ("n/a" if m.high_quality_share is None
                                   else f"{m.high_quality_share:.0%}"),
            "Energy distance": f"{m.energy_distance:.4f}",
            "Train seconds": f"{r.train_seconds:.1f}",
        })
    return rows


def seeds_rows(study: toy2d.SeedStudy) -> list[dict]:
    rows = []
    for kind, s in study.summary().items():
        has_modes = s["n_modes"] is not None
        rows.append({
            "Model": toy2d.MODELS[kind].label,
            "Runs covering all modes": (f"{round(s['all_modes_share'] * s['runs'])} / {s['runs']}"
                                        if has_modes else "n/a"),
            "Modes covered (mean)": (f"{s['modes_covered_mean']:.1f} / {s['n_modes']}"
                                     if has_modes else "n/a"),
            "High-quality share (mean)": (f"{s['high_quality_mean']:.0%}" if has_modes
                                          else "n/a"),
            "Energy distance (median)": f"{s['energy_distance_median']:.4f}",
            "Train seconds (mean)": f"{s['train_seconds_mean']:.1f}",
        })
    return rows


def seeds_have_modes(study: toy2d.SeedStudy) -> bool:
    summary = study.summary()
    return not summary or next(iter(summary.values()))["n_modes"] is not None


@dataclass
class DiffusionView:
    """The forward and reverse process of the trained diffusion model at timestep ``t``."""

    t: int
    T: int
    noised: np.ndarray  # data points noised to t
    reverse: np.ndarray  # samples denoised from pure noise down to t
    paths: np.ndarray  # (frames up to t, N_PATHS_DRAWN, 2): a few points' way from noise
    ranges: tuple[list[float], list[float]]
    keep: float  # sqrt(alpha_bar(t)): how much of each point is left
    noise: float  # sqrt(1 - alpha_bar(t))


def diffusion_view(stored: dict, t) -> DiffusionView:
    """What the page draws for timestep ``t`` (0 = data, T = noise). The reverse
    trajectories are sampled once per trained model and kept in ``stored``."""
    res, train = stored["results"]["diffusion"], stored["train"]
    if "traj" not in stored:
        stored["traj"] = res.reverse_trajectories(N_TRAJECTORIES,
                                                  torch.Generator().manual_seed(stored["seed"] + 12345))
    ts, paths = stored["traj"]
    t = clamp_int(t, 0, res.n_steps, res.n_steps // 2)
    noised = res.forward_noised(train.points[:1000], t, torch.Generator().manual_seed(7))
    lo = np.minimum(paths.reshape(-1, 2).min(0), train.points.min(0))
    hi = np.maximum(paths.reshape(-1, 2).max(0), train.points.max(0))
    centre, reach = res.normaliser.mean, 6.0 * res.normaliser.scale
    lo, hi = np.maximum(lo, centre - reach), np.minimum(hi, centre + reach)
    i = int(np.argmin(np.abs(ts - t)))  # frame index of timestep t
    return DiffusionView(t, res.n_steps, noised, paths[i], paths[: i + 1, :N_PATHS_DRAWN],
                         ([lo[0] - 0.3, hi[0] + 0.3], [lo[1] - 0.3, hi[1] + 0.3]),
                         float(np.sqrt(res.alpha_bar(t))), float(np.sqrt(1 - res.alpha_bar(t))))
