"""Why diffusion? Train a GAN, a VAE and a diffusion model side by side on 2-D toy data.

Layout and wording only: all training, sampling and metrics live in ``diffusion_core.toy2d``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # when this page is run on its own (tests, `streamlit run`)
    sys.path.insert(0, str(ROOT))

from diffusion_core import toy2d  # noqa: E402
from ui.nav import sidebar_nav  # noqa: E402
from ui.state import clamp_int  # noqa: E402

DEVICE = "cpu"  # the toy models are tiny; the CPU is the fastest place for them
STEPS_MIN, STEPS_MAX = 20, 4000
SEED_MAX = 1_000_000
N_SEED_RUNS = 10
SNAPSHOTS_PER_RUN = 20
N_TRAJECTORIES, N_PATHS_DRAWN = 300, 12
N_DATA_DRAWN, N_SAMPLES_DRAWN = 1500, 1000  # keep the SVG charts light
COLOURS = {"gan": "#d62728", "wgan_gp": "#9467bd", "vae": "#1f77b4", "diffusion": "#2ca02c"}
DEFAULT_DRAWN = "-1.5, 1.5\n1.5, 1.5\n0, 0\n-1.5, -1.5\n1.5, -1.5"
STATE_RESULTS, STATE_SEEDS, STATE_TRAJ = "toy2d_results", "toy2d_seed_study", "toy2d_traj"

CAPTIONS = {
    "gan": (
        "**GAN.** A generator tries to fool a discriminator. Its two losses see-saw instead "
        "of going down together: each network's progress is the other's setback. If the "
        "generator finds a few spots that fool the discriminator, it may put all its points "
        "there and forget the other clusters. That is **mode collapse**."
    ),
    "wgan_gp": (
        "**WGAN-GP.** A GAN with a better-behaved referee (a Wasserstein critic with a "
        "gradient penalty). It collapses less often but trains more slowly: the critic takes "
        "five steps for every generator step."
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


def _state(key: str, default=None):
    return st.session_state.get(key, default)


def axis_ranges(points: np.ndarray) -> tuple[list[float], list[float]]:
    lo, hi = points.min(0), points.max(0)
    pad = 0.15 * float((hi - lo).max()) + 0.3
    return [lo[0] - pad, hi[0] + pad], [lo[1] - pad, hi[1] + pad]


def scatter_figure(data: np.ndarray, samples: np.ndarray | None, colour: str, title: str,
                   ranges, height: int = 320) -> go.Figure:
    fig = go.Figure()
    data = data[:N_DATA_DRAWN]
    fig.add_trace(go.Scatter(x=data[:, 0], y=data[:, 1], mode="markers", name="data",
                             marker={"size": 3, "color": "#b0b0b0", "opacity": 0.5},
                             hoverinfo="skip"))
    if samples is not None and len(samples):
        samples = samples[:N_SAMPLES_DRAWN]
        fig.add_trace(go.Scatter(x=samples[:, 0], y=samples[:, 1], mode="markers",
                                 name="samples", hoverinfo="skip",
                                 marker={"size": 4, "color": colour, "opacity": 0.7}))
    fig.update_layout(title=title, height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      showlegend=False)
    fig.update_xaxes(range=ranges[0], showticklabels=False)
    fig.update_yaxes(range=ranges[1], showticklabels=False, scaleanchor="x", scaleratio=1)
    return fig


def loss_figure(history: dict[str, list[float]], height: int = 220) -> go.Figure:
    fig = go.Figure()
    for name, values in history.items():
        v = np.asarray(values, dtype=float)
        stride = max(1, len(v) // 400)
        steps = np.arange(1, len(v) + 1)[::stride]
        fig.add_trace(go.Scatter(x=steps, y=v[::stride], mode="lines", name=name))
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      xaxis_title="step", legend={"orientation": "h", "y": -0.35})
    return fig


def metrics_frame(kinds, metrics, results) -> pd.DataFrame:
    rows = []
    for kind in kinds:
        m, r = metrics[kind], results[kind]
        rows.append({
            "Model": toy2d.MODELS[kind].label,
            "Parameters": f"{r.param_counts['total']:,}",
            "Modes covered": "n/a" if m.n_modes is None else f"{m.modes_covered} / {m.n_modes}",
            "High-quality share": ("n/a" if m.high_quality_share is None
                                   else f"{m.high_quality_share:.0%}"),
            "Energy distance": f"{m.energy_distance:.4f}",
            "Train seconds": f"{r.train_seconds:.1f}",
        })
    return pd.DataFrame(rows)


def seeds_frame(study: toy2d.SeedStudy) -> pd.DataFrame:
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
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- controls

st.set_page_config(page_title="Why diffusion? · Diffusion Lab", page_icon="⚖️", layout="wide")
sidebar_nav()
st.title("Why diffusion?")
st.markdown(
    "Three kinds of generative model learn the same cloud of points, with the same "
    "network size and the same amount of practice. Watch how each one gets there (or doesn't)."
)

labels = list(toy2d.DATASETS.values())
names = list(toy2d.DATASETS)
c1, c2, c3 = st.columns([2, 1, 1])
dataset_label = c1.selectbox("Dataset", labels, key="toy2d_dataset")
dataset_name = names[labels.index(dataset_label)] if dataset_label in labels else "ring"
steps_in = c2.number_input("Training steps", min_value=STEPS_MIN, max_value=STEPS_MAX,
                           value=toy2d.Budget().steps, step=100, key="toy2d_steps",
                           help="Every model gets the same number of steps and batch size.")
seed_in = c3.number_input("Seed", min_value=0, max_value=SEED_MAX, value=0, step=1,
                          key="toy2d_seed")
with_wgan = st.checkbox("Also train WGAN-GP, the usual fix for GANs (about 5x slower per step)",
                        key="toy2d_wgan")

# Server-side clamps: never trust the widget limits alone.
steps = clamp_int(steps_in, STEPS_MIN, STEPS_MAX, toy2d.Budget().steps)
seed = clamp_int(seed_in, 0, SEED_MAX, 0)
budget = toy2d.Budget(steps=steps, snapshot_every=max(1, steps // SNAPSHOTS_PER_RUN),
                      snapshot_n=400).clamped(max_steps=STEPS_MAX)
kinds = ("gan", "wgan_gp", "vae", "diffusion") if with_wgan else toy2d.DEFAULT_MODELS

dataset_kwargs: dict = {}
points_error = None
if dataset_name == "drawn":
    st.markdown("**Draw your data**: click or lasso points on the grid below, or type them "
                "(one `x, y` per line). Each point becomes a small cluster.")
    d1, d2 = st.columns([3, 2])
    candidates = np.stack(np.meshgrid(np.arange(-3.0, 3.01, 0.5),
                                      np.arange(-3.0, 3.01, 0.5)), -1).reshape(-1, 2)
    pick = go.Figure(go.Scatter(x=candidates[:, 0], y=candidates[:, 1], mode="markers",
                                marker={"size": 9, "color": "#cccccc"}))
    pick.update_layout(height=360, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                       dragmode="lasso")
    pick.update_yaxes(scaleanchor="x", scaleratio=1)
    with d1:
        try:
            event = st.plotly_chart(pick, on_select="rerun", key="toy2d_draw",
                                    selection_mode=("points", "box", "lasso"))
            selected = [(p["x"], p["y"]) for p in (event.selection.get("points") or [])]
        except Exception:  # selection is a nicety; typing points always works
            selected = []
    text = d2.text_area("Points (x, y)", value=DEFAULT_DRAWN, height=200,
                        key="toy2d_points_text")
    try:
        pts = np.array(selected, dtype=float) if selected else toy2d.parse_points(text)
        toy2d.make_drawn_dataset(pts, 10, np.random.default_rng(0))  # validate early
        dataset_kwargs = {"points": pts}
        d2.caption(f"Using {len(pts)} {'selected' if selected else 'typed'} point(s).")
    except ValueError as exc:
        points_error = str(exc)
        st.error(f"Can't use these points: {points_error}")

b1, b2 = st.columns(2)
train_clicked = b1.button("Train", type="primary", key="toy2d_train",
                          disabled=points_error is not None)
seeds_clicked = b2.button(f"Run over {N_SEED_RUNS} seeds", key="toy2d_seeds_btn",
                          disabled=points_error is not None,
                          help="Trains every model once per seed with the budget above; "
                               "this takes a few minutes at the default budget.")

# --------------------------------------------------------------------------- training

stored = _state(STATE_RESULTS)
shown_kinds = kinds if train_clicked or stored is None else stored["kinds"]
panel_cols = st.columns(len(shown_kinds))
slots = {k: (col.empty(), col.empty(), col.empty(), col)
         for k, col in zip(shown_kinds, panel_cols, strict=True)}

if train_clicked:
    try:
        train, held_out = toy2d.make_split(dataset_name, np.random.default_rng(seed),
                                           **dataset_kwargs)
        ranges = axis_ranges(train.points)
        live_hist: dict[str, dict[str, list[float]]] = {k: {} for k in kinds}

        def on_step(kind: str, step: int, losses: dict, snapshot) -> None:
            for key, value in losses.items():
                live_hist[kind].setdefault(key, []).append(value)
            if snapshot is None:
                return
            fig_slot, loss_slot, text_slot, _ = slots[kind]
            label = toy2d.MODELS[kind].label
            fig_slot.plotly_chart(
                scatter_figure(train.points, snapshot, COLOURS[kind], label, ranges),
                key=f"toy2d_live_{kind}_{step}")
            loss_slot.plotly_chart(loss_figure(live_hist[kind]),
                                   key=f"toy2d_live_loss_{kind}_{step}")
            text_slot.caption(f"step {step} / {budget.steps}")

        with st.spinner("Training the models side by side..."):
            results = toy2d.train_side_by_side(train.points, kinds, budget, seed=seed,
                                               device=DEVICE, callback=on_step)
            metrics, samples = {}, {}
            for kind, res in results.items():
                metrics[kind], samples[kind] = toy2d.evaluate_result(
                    res, held_out, toy2d.eval_generator(seed, kind))
        st.session_state[STATE_RESULTS] = {
            "kinds": tuple(kinds), "dataset": dataset_name, "label": dataset_label,
            "train": train, "held_out": held_out, "results": results, "metrics": metrics,
            "samples": samples, "seed": seed, "budget": budget,
        }
        st.session_state.pop(STATE_TRAJ, None)
    except Exception as exc:  # keep the page alive, say what went wrong
        st.error(f"Training failed: {exc}")

stored = _state(STATE_RESULTS)
if stored is None:
    st.info("Pick a dataset and press **Train**.")
else:
    train = stored["train"]
    ranges = axis_ranges(train.points)
    for kind in stored["kinds"]:
        if kind not in slots:
            continue
        res, m = stored["results"][kind], stored["metrics"][kind]
        fig_slot, loss_slot, text_slot, col = slots[kind]
        title = toy2d.MODELS[kind].label
        if m.n_modes is not None:
            title += f" - {m.modes_covered}/{m.n_modes} modes"
        fig_slot.plotly_chart(scatter_figure(train.points, stored["samples"][kind],
                                             COLOURS[kind], title, ranges),
                              key=f"toy2d_final_{kind}")
        loss_slot.plotly_chart(loss_figure(res.history), key=f"toy2d_final_loss_{kind}")
        text_slot.caption(f"{res.steps_done} steps, {res.train_seconds:.1f} s")
        if res.diverged:
            col.warning("Training diverged (a loss became infinite); samples are unreliable.")
        col.markdown(CAPTIONS[kind])

    st.subheader(f"Results on {stored['label']} (seed {stored['seed']}, "
                 f"{stored['budget'].steps} steps)")
    st.dataframe(metrics_frame(stored["kinds"], stored["metrics"], stored["results"]),
                 hide_index=True)
    st.caption(
        "**Modes covered**: a cluster counts when at least 1% of 2,000 samples (and at least 5) "
        "land within 3 standard deviations of its centre. **High-quality share**: samples that "
        "land that close to *some* centre. **Energy distance**: how different the samples are "
        "from fresh data the model never saw (0 = indistinguishable; lower is better)."
    )

# --------------------------------------------------------------------------- diffusion view


@st.fragment
def diffusion_view() -> None:
    stored = _state(STATE_RESULTS)
    if stored is None or "diffusion" not in stored["results"]:
        return
    res = stored["results"]["diffusion"]
    train = stored["train"]
    try:
        traj = _state(STATE_TRAJ)
        if traj is None:
            g = torch.Generator().manual_seed(stored["seed"] + 12345)
            traj = res.reverse_trajectories(N_TRAJECTORIES, g)
            st.session_state[STATE_TRAJ] = traj
        ts, paths = traj
        T = res.n_steps
        t = clamp_int(st.slider("Timestep t (0 = data, T = pure noise)", 0, T, T // 2,
                                key="toy2d_t"), 0, T, T // 2)
        base = train.points[:1000]
        noised = res.forward_noised(base, t, torch.Generator().manual_seed(7))
        lo = np.minimum(paths.reshape(-1, 2).min(0), train.points.min(0))
        hi = np.maximum(paths.reshape(-1, 2).max(0), train.points.max(0))
        centre, reach = res.normaliser.mean, 6.0 * res.normaliser.scale
        lo, hi = np.maximum(lo, centre - reach), np.minimum(hi, centre + reach)
        pad = 0.3
        ranges = ([lo[0] - pad, hi[0] + pad], [lo[1] - pad, hi[1] + pad])
        f1, f2 = st.columns(2)
        f1.plotly_chart(scatter_figure(train.points, noised, COLOURS["diffusion"],
                                       f"Forward: data noised to t = {t}", ranges, 380),
                        key="toy2d_forward")
        i = int(np.argmin(np.abs(ts - t)))  # frame index of timestep t
        fig = scatter_figure(train.points, paths[i], COLOURS["diffusion"],
                             f"Reverse: noise denoised down to t = {t}", ranges, 380)
        for j in range(N_PATHS_DRAWN):
            fig.add_trace(go.Scatter(x=paths[: i + 1, j, 0], y=paths[: i + 1, j, 1],
                                     mode="lines", line={"width": 1.5, "color": "#333333"},
                                     opacity=0.7, hoverinfo="skip"))
        f2.plotly_chart(fig, key="toy2d_reverse")
        st.caption(
            f"Left: the forward process. At t = {t} each point is {np.sqrt(res.alpha_bar(t)):.2f} "
            f"times itself plus {np.sqrt(1 - res.alpha_bar(t)):.2f} times random noise; by "
            f"t = {T} the clusters are gone and only a round cloud is left. Right: the learned "
            "reverse process. Starting from that cloud, the model removes a bit of noise at "
            "each step; the dark lines follow a few points from noise back onto the data."
        )
    except Exception as exc:
        st.error(f"Could not draw the diffusion view: {exc}")


if stored is not None and "diffusion" in stored["results"]:
    st.subheader("Inside diffusion: noise in, noise out")
    diffusion_view()

# --------------------------------------------------------------------------- seeds

st.subheader(f"Is it luck? {N_SEED_RUNS} seeds")
st.caption("One run can be lucky or unlucky. This trains every model once per seed and "
           "counts how often each one finds every cluster.")
if seeds_clicked:
    bar = st.progress(0.0, text="Starting...")
    try:
        def on_progress(done: int, total: int, message: str) -> None:
            bar.progress(done / max(total, 1), text=f"{done}/{total}: {message}")

        study = toy2d.run_seeds(dataset_name, range(N_SEED_RUNS), kinds, budget, device=DEVICE,
                                progress=on_progress, **dataset_kwargs)
        st.session_state[STATE_SEEDS] = {"study": study, "label": dataset_label}
        bar.empty()
    except Exception as exc:
        bar.empty()
        st.error(f"The seed run failed: {exc}")

seed_state = _state(STATE_SEEDS)
if seed_state is not None:
    study = seed_state["study"]
    st.markdown(f"**{seed_state['label']}**, {len(study.seeds)} seeds, "
                f"{study.budget.steps} steps each ({study.wall_seconds:.0f} s in all)")
    st.dataframe(seeds_frame(study), hide_index=True)
    if study.summary() and next(iter(study.summary().values()))["n_modes"] is None:
        st.caption("This dataset has no separate clusters, so only the energy distance applies.")
