"""Parts of the Train page: the loss chart, sharp previews, the upload report and the live
panel of a training job (the page arranges them; the words about a job come from
:mod:`diffusion_core.app.train`)."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from diffusion_core.app.train import fmt_duration, hardware_text, preview_caption, progress_text
from diffusion_core.media.uploads import UploadSummary
from diffusion_core.training.presets import CONDITIONAL_HELP
from ui.state import as_default


def big(im: Image.Image, width: int = 420) -> Image.Image:
    """Scale a small preview up with sharp pixels."""
    k = max(1, width // max(im.width, 1))
    return im.resize((im.width * k, im.height * k), Image.NEAREST) if k > 1 else im


def loss_figure(snap: dict) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=snap["curve_steps"], y=snap["curve_loss"], mode="lines",
                             name="loss", line=dict(color="#1f77b4")))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=40, b=10),
                      title="How wrong its guesses are (training loss; lower is better)",
                      xaxis_title="training step", yaxis_title="loss", yaxis_type="log",
                      xaxis=dict(range=[0, max(snap["total"], 1)]), showlegend=False)
    return fig


def upload_report(rep: UploadSummary | None) -> None:
    """What the last uploads gave: refused zips, pictures added, files skipped."""
    if rep is None:
        return
    for err in rep.errors:
        st.error(err)
    if rep.accepted:
        st.success(rep.message())
    elif rep.skipped or not rep.errors:
        st.error(f"{rep.message()} None of those files is a picture that can be used.")
    if rep.skipped:
        with st.expander(f"Skipped files ({len(rep.skipped)})"):
            # names come from the user's files: shown as plain table cells, never markdown
            rows = rep.skipped[:200]
            st.dataframe({"File": [n for n, _ in rows], "Why it was skipped": [r for _, r in rows]},
                         hide_index=True, width="stretch")


def conditional_option(form, disabled: bool, persist: str) -> None:
    """The "conditional" checkbox and, when it is ticked, what it will do with this data."""
    st.checkbox("Conditional: also learn what each picture is, so the Create page can ask "
                "for one kind", key="train_conditional", **as_default("train_conditional"),
                persist_state=persist, help=CONDITIONAL_HELP, disabled=disabled)
    if form.conditional:
        (st.info if form.classes else st.warning)(form.conditional_note)


def training_panel(job, snap: dict) -> None:
    """The live view of a training job: progress, numbers, the loss curve and a preview."""
    st.divider()
    st.header(f"Training “{snap['name']}”")
    st.caption("What is happening: the model is learning to remove noise from these pictures, "
               "at every noise level, one batch at a time.")
    st.progress(min(snap["step"] / max(snap["total"], 1), 1.0), text=progress_text(snap))
    running = snap["state"] == "running"
    if snap["state"] in ("starting", "running") and snap["stop_requested"]:
        st.caption("Stopping: the model is saved at the next step…")
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Step", f"{snap['step']:,} / {snap['total']:,}")
    m2.metric("Loss now", f"{snap['curve_loss'][-1]:.3f}" if snap["curve_loss"] else "–")
    m3.metric("Speed", f"{snap['steps_per_s']:.1f} steps/s")
    m4.metric("Time left", fmt_duration(snap["eta_s"]) if running else "–")
    st.caption(f"Running on: {hardware_text(snap['device'])}")
    l1, l2 = st.columns([3, 2])
    if snap["curve_steps"]:
        l1.plotly_chart(loss_figure(snap), width="stretch", key="train_loss_chart")
    l1.caption(
        "Each step the model gets a batch of pictures with random amounts of noise and "
        "tries to remove it; the loss measures how far its guesses are from the clean "
        "pictures. It drops fast at first, then slowly: the easy part (blurry shapes) is "
        "learnt first, the fine detail later."
    )
    if snap["preview"] is not None:
        l2.image(big(snap["preview"], 420), caption=preview_caption(snap), width="stretch")
    else:
        l2.info("Samples appear as soon as training starts.")
    l2.caption("Samples come from a running average of the model's weights (its 'EMA'), "
               "which is steadier than the latest weights.")
    if snap["state"] in ("starting", "running", "saving"):
        st.caption("You can leave this page or close the browser: training goes on on the "
                   "server, and coming back here shows it again.")
