"""Parts of the Repair page: painting the damage (a free-hand canvas where the optional
package is installed, else selections on a chart), rows of pictures, and the live view of a
repair run (the page arranges them; the words about a run come from
:mod:`diffusion_core.app.repair`)."""

from __future__ import annotations

import importlib.util

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image

from diffusion_core.app.estimate import Estimate
from diffusion_core.app.repair import PaintedMask, denoise_progress, inpaint_progress
from diffusion_core.media.masks import mask_from_drawing, paint_grid, selection_mask
from diffusion_core.media.viz import to_display
from ui.job_watch import job_state, kept_result, progress_with_stop, watch
from ui.models import estimate_caption

HAS_CANVAS = importlib.util.find_spec("streamlit_drawable_canvas") is not None
PAINT = np.array([230, 30, 30])


def show_row(items: list[tuple[np.ndarray, str]]) -> None:
    for col, (img, caption) in zip(st.columns(len(items)), items):
        col.image(img, caption=caption, width="stretch")


def canvas_mask(x: torch.Tensor, brush: int, key: str) -> np.ndarray | None:
    """A free-hand brush over the picture (streamlit-drawable-canvas); the painted mask."""
    from streamlit_drawable_canvas import st_canvas

    _, h, w = x.shape
    scale = max(1, 480 // max(h, w))
    canvas = st_canvas(fill_color="rgba(255, 0, 0, 0.6)", stroke_width=brush,
                       stroke_color="rgba(255, 0, 0, 0.9)",
                       background_image=Image.fromarray(to_display(x)).convert("RGB")
                       .resize((w * scale, h * scale)),
                       height=h * scale, width=w * scale, drawing_mode="freedraw", key=key)
    if canvas is None or canvas.image_data is None:
        return None
    return mask_from_drawing(canvas.image_data, size=(h, w)).numpy()


def _painted_picture(x: torch.Tensor, mask: np.ndarray) -> np.ndarray:
    shown = to_display(x)
    shown = np.repeat(shown[:, :, None], 3, axis=2) if shown.ndim == 2 else shown.copy()
    shown[mask] = (0.45 * shown[mask] + 0.55 * PAINT).astype(np.uint8)
    return shown


def selection_paint(x: torch.Tensor, mask: np.ndarray, key: str,
                    view_w: int = 560) -> np.ndarray | None:
    """The picture with its painted damage in red on a chart, where a box, a lasso or a click
    selects more; the selection as a mask (None where charts cannot select)."""
    _, h, w = x.shape
    xs, ys, brush = paint_grid(h, w, cells=48)
    fig = go.Figure(go.Image(z=_painted_picture(x, mask), hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", hoverinfo="none",
                             marker={"size": 8, "opacity": 0.01, "color": "#000"},
                             showlegend=False))
    fig.update_layout(height=int(view_w * h / w) + 40, width=view_w, dragmode="select",
                      margin={"l": 0, "r": 0, "t": 30, "b": 0}, showlegend=False)
    fig.update_xaxes(visible=False, range=[-0.5, w - 0.5])
    fig.update_yaxes(visible=False, range=[h - 0.5, -0.5], scaleanchor="x")
    try:
        event = st.plotly_chart(fig, on_select="rerun", key=key,
                                selection_mode=("points", "box", "lasso"),
                                config={"displaylogo": False})
        sel = event.selection if event is not None else None
        return selection_mask(h, w, dict(sel) if sel else None, brush=brush).numpy()
    except Exception:  # noqa: BLE001 - painting is a nicety; presets always work
        return None


def paint_damage(x: torch.Tensor, painted: PaintedMask) -> None:
    """Let the visitor paint damage over ``x`` (kept in ``painted``), and clear it again."""
    painted.for_picture(x)
    if HAS_CANVAS:  # optional package: a free-hand brush
        brush = st.slider("Brush size", 2, 40, 12, key="repair_brush")
        painted.add(canvas_mask(x, brush, key=f"repair_canvas_{painted.round}"))
    else:
        st.markdown(
            "**Paint** by selecting on the picture: drag a **box** (the default tool), pick "
            "the **lasso** in the chart's toolbar for free shapes, or **click** for a small "
            "square. Every selection is added to the damage; *Clear* starts again.")
        new = selection_paint(x, painted.mask, key=f"repair_paint_{painted.round}")
        if new is None:
            st.caption("Painting is not available here; use a ready-made damage instead.")
        elif painted.add(new):  # something new was selected: redraw with it
            st.rerun()
    st.button("Clear the painted damage", key="repair_paint_clear", on_click=painted.clear)


def inpaint_live(job, snap: dict) -> None:
    """Progress, Stop, and now and then the model's current guess."""
    progress_with_stop(job, *inpaint_progress(snap), key="repair_inpaint")
    if snap["preview"] is not None:
        w = snap["preview"].shape[1]
        st.image(snap["preview"], caption="The model's current guess", width=min(w * 2, 320))


def denoise_live(job, snap: dict) -> None:
    progress_with_stop(job, *denoise_progress(snap), key="repair_denoise")
    if snap["note"]:
        st.warning(snap["note"])


def job_outcome(job) -> None:
    """A finished job that has nothing to show: why."""
    if job is not None and job.state == "failed":
        st.error(job.error)
    elif job is not None and job.done and job.result is None:
        st.info("Stopped before the run started: nothing was computed.")


def run_and_result(label: str, button_key: str, job_key: str, result_key: str, live, make_job,
                   disabled: bool, settings_key, stale: str, estimate: Estimate | None = None):
    """The Run button of one tab (with how long a run will take beside it), the live view
    while its job runs (with Stop), why a finished job has nothing to show, and then the
    result kept for the tab (or None), under a "Result" heading that says when it was made
    with other settings."""
    ss = st.session_state
    _, running = job_state(ss.get(job_key))
    b1, b2 = st.columns([1, 3], vertical_alignment="center")
    if b1.button(label, type="primary", key=button_key, disabled=disabled or running) and not running:
        ss[job_key] = make_job().start()
        st.rerun()  # redraw with the run going (the buttons disabled)
    estimate_caption(b2, estimate)
    watch(lambda: ss.get(job_key), live, key=button_key.replace("_run", ""))
    job_outcome(ss.get(job_key))
    out = kept_result(job_key, result_key)
    if out:
        st.subheader("Result")
        if out["settings"] != settings_key:
            st.caption(f"⏳ Made with earlier settings: {stale}")
    return out
