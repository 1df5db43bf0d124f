"""Charts and pictures the pages draw: plotly figures and Vega-Lite specs made from library
data, previews.

Layout only: every number plotted here was computed in ``diffusion_core``. The Add-noise
page's two charts are Vega-Lite (``st.vega_lite_chart``), not Plotly: they are on screen at
the page's first render, and Plotly's 4.7 MB script cost that render about 0.8 s in the
browser (bench/results/app.md, page budgets).
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


def schedule_chart(view: ForwardView, step: int) -> dict:
    """alpha-bar (left axis) and log SNR (right axis) against the step, with a rule at
    ``step``: a Vega-Lite spec."""
    ts, alpha_bar, log_snr = view.curves()
    rows = [{"step": int(t), "alpha_bar": round(float(a), 6), "log_snr": round(float(v), 4)}
            for t, a, v in zip(ts, alpha_bar, log_snr, strict=True)]
    x = {"field": "step", "type": "quantitative", "title": "step"}

    def curve(field: str, title: str, colour: str, scale: dict | None = None) -> dict:
        y = {"field": field, "type": "quantitative", "title": title, "axis": {"titleColor": colour}}
        return {"mark": {"type": "line", "color": colour},
                "encoding": {"x": x, "y": y | ({"scale": scale} if scale else {}),
                             "tooltip": [{"field": "step", "type": "quantitative"},
                                         {"field": field, "type": "quantitative", "title": title,
                                          "format": ".4g"}]}}

    return {
        "title": f"{view.schedule.name} schedule, T = {view.T}", "height": 300,
        "data": {"values": rows},
        "layer": [
            curve("alpha_bar", "ᾱ (signal left)", "#1f77b4", {"domain": [0, 1.02]}),
            curve("log_snr", "log SNR", "#ff7f0e"),
            {"data": {"values": [{"step": max(int(step), 1)}]},
             "mark": {"type": "rule", "color": "#d33682", "strokeWidth": 2},
             "encoding": {"x": {"field": "step", "type": "quantitative"}}},
        ],
        "resolve": {"scale": {"y": "independent"}},
    }


def pixel_histogram_chart(x) -> dict:
    """The pixel values of ``x`` against the standard normal density: a Vega-Lite spec."""
    centres, dens = histogram(x)
    half = float(centres[1] - centres[0]) / 2 if len(centres) > 1 else 0.05
    bars = [{"lo": round(float(c) - half, 4), "hi": round(float(c) + half, 4),
             "density": round(float(d), 5)} for c, d in zip(centres, dens, strict=True)]
    v = np.linspace(-3.5, 3.5, 200)
    bell = [{"v": round(float(a), 4), "density": round(float(b), 5)}
            for a, b in zip(v, normal_pdf(v), strict=True)]
    y = {"field": "density", "type": "quantitative", "title": "density"}
    return {
        "title": "Pixel values against the bell curve", "height": 300,
        "layer": [
            {"data": {"values": bars}, "mark": {"type": "rect", "color": "#9ecae1"},
             "encoding": {"x": {"field": "lo", "type": "quantitative", "title": "pixel value"},
                          "x2": {"field": "hi"}, "y": y,
                          "tooltip": [{"field": "lo", "title": "from", "format": ".2f"},
                                      {"field": "hi", "title": "to", "format": ".2f"},
                                      {"field": "density", "format": ".3f"}]}},
            {"data": {"values": bell}, "mark": {"type": "line", "color": "#d62728"},
             "encoding": {"x": {"field": "v", "type": "quantitative"}, "y": y}},
        ],
    }


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
