"""Parts of the "Why diffusion?" page: the point clouds and loss charts, the grid to draw a
dataset on, and the live and final panels of the models (the page arranges them; the words
and numbers come from :mod:`diffusion_core.app.toy2d`)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from diffusion_core import toy2d
from diffusion_core.app.toy2d import (
    CAPTIONS,
    COLOURS,
    GRID,
    axis_ranges,
    compare_progress,
    diffusion_view,
    panel_title,
    seeds_progress,
)
from ui.job_watch import progress_with_stop

N_DATA_DRAWN, N_SAMPLES_DRAWN = 1500, 1000  # keep the SVG charts light
#: While the models train, their charts are redrawn every ``LIVE_EVERY_S`` seconds (each model
#: publishes every 200 steps at the defaults), over a lighter cloud of data points: every
#: redraw repaints every point of the three clouds in the browser, on the cores the training
#: needs.
N_DATA_LIVE, LIVE_EVERY_S = 600, 1.5


def scatter_figure(data: np.ndarray, samples: np.ndarray | None, colour: str, title: str,
                   ranges, height: int = 320, n_data: int = N_DATA_DRAWN) -> go.Figure:
    fig = go.Figure()
    data = data[:n_data]
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


def pick_points(container, key: str = "toy2d_draw") -> list[dict]:
    """A grid of points to click or lasso (in ``container``); the selected ones (``[]``
    where charts cannot select: typing points always works)."""
    pick = go.Figure(go.Scatter(x=GRID[:, 0], y=GRID[:, 1], mode="markers",
                                marker={"size": 9, "color": "#cccccc"}))
    pick.update_layout(height=360, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                       dragmode="lasso")
    pick.update_yaxes(scaleanchor="x", scaleratio=1)
    try:
        event = container.plotly_chart(pick, on_select="rerun", key=key,
                                       selection_mode=("points", "box", "lasso"))
        return list(event.selection.get("points") or [])
    except Exception:  # noqa: BLE001 - selection is a nicety; typing points always works
        return []


def live_panels(job, snap: dict) -> None:
    """While the models train: progress, Stop, and each model's latest samples and losses
    (a stopped run keeps them; a finished one shows its results instead)."""
    if job.result is not None:
        return
    if not job.done:
        progress_with_stop(job, *compare_progress(snap), key="toy2d")
    if snap["train"] is None:
        return
    ranges = axis_ranges(snap["train"])
    for kind, col in zip(snap["kinds"], st.columns(len(snap["kinds"])), strict=True):
        label = toy2d.MODELS[kind].label
        col.plotly_chart(scatter_figure(snap["train"], snap["samples"].get(kind), COLOURS[kind],
                                        label, ranges, n_data=N_DATA_LIVE),
                         key=f"toy2d_live_{kind}")
        col.plotly_chart(loss_figure(snap["history"][kind]), key=f"toy2d_live_loss_{kind}")
        col.caption(f"step {snap['steps'][kind]} / {snap['total']}")


def final_panels(stored: dict) -> None:
    """Each trained model: its samples over the data, its losses, and what it is."""
    ranges = axis_ranges(stored["train"].points)
    for kind, col in zip(stored["kinds"], st.columns(len(stored["kinds"])), strict=True):
        res = stored["results"][kind]
        col.plotly_chart(scatter_figure(stored["train"].points, stored["samples"][kind],
                                        COLOURS[kind], panel_title(stored, kind), ranges),
                         key=f"toy2d_final_{kind}")
        col.plotly_chart(loss_figure(res.history), key=f"toy2d_final_loss_{kind}")
        col.caption(f"{res.steps_done} steps, {res.train_seconds:.1f} s")
        if res.diverged:
            col.warning("Training diverged (a loss became infinite); samples are unreliable.")
        col.markdown(CAPTIONS[kind])


def seeds_live(job, snap: dict) -> None:
    progress_with_stop(job, *seeds_progress(snap), key="toy2d_seeds")


@st.fragment
def diffusion_panel(stored: dict) -> None:
    """The forward and the learned reverse process side by side, at a timestep to slide."""
    try:
        T = stored["results"]["diffusion"].n_steps
        v = diffusion_view(stored, st.slider("Timestep t (0 = data, T = pure noise)", 0, T,
                                             T // 2, key="toy2d_t"))
        points, colour = stored["train"].points, COLOURS["diffusion"]
        f1, f2 = st.columns(2)
        f1.plotly_chart(scatter_figure(points, v.noised, colour,
                                       f"Forward: data noised to t = {v.t}", v.ranges, 380),
                        key="toy2d_forward")
        fig = scatter_figure(points, v.reverse, colour,
                             f"Reverse: noise denoised down to t = {v.t}", v.ranges, 380)
        for j in range(v.paths.shape[1]):
            fig.add_trace(go.Scatter(x=v.paths[:, j, 0], y=v.paths[:, j, 1], mode="lines",
                                     line={"width": 1.5, "color": "#333333"}, opacity=0.7,
                                     hoverinfo="skip"))
        f2.plotly_chart(fig, key="toy2d_reverse")
        st.caption(
            f"Left: the forward process. At t = {v.t} each point is {v.keep:.2f} times itself "
            f"plus {v.noise:.2f} times random noise; by t = {v.T} the clusters are gone and only "
            "a round cloud is left. Right: the learned reverse process. Starting from that "
            "cloud, the model removes a bit of noise at each step; the dark lines follow a few "
            "points from noise back onto the data."
        )
    except Exception as exc:  # noqa: BLE001 - keep the page alive, say what went wrong
        st.error(f"Could not draw the diffusion view: {exc}")
