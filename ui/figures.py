"""Charts and pictures the pages draw: plotly figures made from library data, previews.

Layout only: every number plotted here was computed in ``diffusion_core``.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from diffusion_core.app.forward import ForwardView
from diffusion_core.maths.samplers import get_sampler
from diffusion_core.media.export import preview
from diffusion_core.media.viz import histogram, normal_pdf

PREVIEW = dict(max_side=384, min_side=192)
LEGEND = dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right")


def show(col, x, caption: str) -> None:
    """A picture (a tensor in [-1, 1] or a uint8 array) at preview size, with a caption."""
    col.image(preview(x, **PREVIEW), caption=caption, width="stretch")


def metric_cards(cards, columns) -> None:
    """One ``st.metric`` per card ((label, value, delta, help)) in the given columns."""
    for col, (name, value, delta, tip) in zip(columns, cards):
        col.metric(name, value, delta=delta, help=tip)


# ---------------------------------------------------------------- Add noise


def schedule_chart(view: ForwardView, step: int) -> go.Figure:
    """alpha-bar and log SNR against the step, with a marker at ``step``."""
    ts, alpha_bar, log_snr = view.curves()
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=ts, y=alpha_bar, name="ᾱ (signal left)"))
    fig.add_trace(go.Scatter(x=ts, y=log_snr, name="log SNR", yaxis="y2"))
    fig.add_vline(x=max(step, 1), line_color="#d33682")
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10),
                      title=f"{view.schedule.name} schedule, T = {view.T}",
                      xaxis_title="step", yaxis=dict(title="ᾱ", range=[0, 1.02]),
                      yaxis2=dict(title="log SNR", overlaying="y", side="right"),
                      legend=dict(orientation="h"))
    return fig


def pixel_histogram_chart(x) -> go.Figure:
    """The pixel values of ``x`` against the standard normal density."""
    centres, dens = histogram(x)
    v = np.linspace(-3.5, 3.5, 200)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=centres, y=dens, name="pixel values", marker_color="#9ecae1"))
    fig.add_trace(go.Scatter(x=v, y=normal_pdf(v), name="N(0, 1)", line_color="#d62728"))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), bargap=0,
                      title="Pixel values against the bell curve", legend=dict(orientation="h"))
    return fig


# ---------------------------------------------------------------- Restore


def restore_quality_chart(result) -> go.Figure:
    """PSNR and SSIM of the model's guess x̂₀ at every sampler step of a restore run."""
    rows, fm = result.metrics, result.final_metrics
    xs = [r["i"] + 1 for r in rows]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=[r["psnr"] for r in rows], name="PSNR of x̂₀ (dB)",
                             mode="lines+markers",
                             customdata=[[r["step"], r["sigma"]] for r in rows],
                             hovertemplate="sampler step %{x} (noise step %{customdata[0]})"
                                           "<br>PSNR %{y:.2f} dB<extra></extra>"))
    fig.add_trace(go.Scatter(x=xs, y=[r["ssim"] for r in rows], name="SSIM of x̂₀",
                             mode="lines+markers", yaxis="y2"))
    if "noisy_psnr" in fm:
        fig.add_hline(y=fm["noisy_psnr"], line_dash="dot", line_color="#888",
                      annotation_text="noisy input", annotation_position="bottom right")
    fig.add_trace(go.Scatter(x=[xs[-1]], y=[fm.get("psnr")], name="final picture (PSNR)",
                             mode="markers", marker=dict(size=12, symbol="star")))
    fig.update_layout(height=330, margin=dict(l=10, r=10, t=40, b=10),
                      title="How close is the model's guess to the original, step by step?",
                      xaxis=dict(title="sampler step", tickformat="d",
                                 dtick=1 if len(xs) <= 12 else None),
                      yaxis=dict(title="PSNR (dB)"),
                      yaxis2=dict(title="SSIM", overlaying="y", side="right", range=[0, 1],
                                  showgrid=False),
                      legend=LEGEND)
    return fig


# ---------------------------------------------------------------- Cost of steps


def _steps_trace(rows, sampler: str, y, unit: str) -> go.Scatter:
    spec = get_sampler(sampler)
    name = spec.short_name
    return go.Scatter(
        x=[r["steps"] for r in rows], y=y, name=name, mode="lines+markers",
        line=dict(color=spec.colour),
        customdata=[[r["model_calls"], r["seconds"]] for r in rows],
        hovertemplate="%{x} steps · %{customdata[0]} network calls<br>%{y:.2f} " + unit
                      + "<extra>" + name + "</extra>")


def cost_charts(study) -> tuple[go.Figure, go.Figure]:
    """(quality, time) against the number of steps, one line per sampler, for a
    :class:`diffusion_core.app.cost.StudyResults`."""
    fig, tfig = go.Figure(), go.Figure()
    for s, mine in study.by_sampler():
        fig.add_trace(_steps_trace(mine, s, [study.y(r) for r in mine], "dB"))
        tfig.add_trace(_steps_trace(mine, s, [r["seconds"] for r in mine], "s"))
    first = study.rows[0]
    if study.score == "psnr":
        fig.add_hline(y=first["noisy_psnr"], line_dash="dot", line_color="#888",
                      annotation_text="the noisy start", annotation_position="bottom right")
        fig.add_hline(y=first["reference_psnr"], line_dash="dash", line_color="#555",
                      annotation_text=f"{first['reference_steps']}-step DDIM",
                      annotation_position="top right")
        title, ytitle = "How close to the original?", "PSNR against the original (dB)"
    else:
        fig.add_hline(y=35, line_dash="dot", line_color="#888",
                      annotation_text="35 dB: differences too small to see",
                      annotation_position="bottom right")
        title, ytitle = "How close to the long run?", "agreement with the long run (dB)"
    axis = dict(title="number of steps (log scale)", type="log",
                tickvals=sorted({r["steps"] for r in study.rows}))
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=50, b=10), title=title, xaxis=axis,
                      yaxis=dict(title=ytitle), legend=LEGEND)
    tfig.update_layout(height=380, margin=dict(l=10, r=10, t=50, b=10),
                       title="What did it cost?", xaxis=axis,
                       yaxis=dict(title="seconds (sampling only)"), legend=LEGEND)
    return fig, tfig
