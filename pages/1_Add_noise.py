"""Add noise: the forward process, scrubbed live."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from diffusion_core.maths.forward import draw_noise, mix_coefs, sigma_at_step, strip_steps, x_at_step
from diffusion_core.maths.schedules import SCHEDULES, T_MAX, T_MIN, clamp_T, make_schedule
from diffusion_core.media.viz import (
    histogram,
    noise_display,
    normal_pdf,
    png_bytes,
    strip_image,
    to_display,
)
from ui.nav import sidebar_nav
from ui.scrubber import scrubber_html
from ui.state import K_SCHEDULE, K_SEED, K_STEP, K_T, bind, clamp_int, image_picker, init_state

st.set_page_config(page_title="Add noise · Diffusion Lab", page_icon="🌫️", layout="wide")
sidebar_nav()
init_state("noise")
ss = st.session_state

SCHEDULE_HELP = {
    "linear": "Linear (Ho et al. 2020): the classic one; the picture is gone well before the end.",
    "cosine": "Cosine (Nichol & Dhariwal 2021): destroys the picture more gently and evenly.",
    "sigmoid": "Sigmoid: keeps the picture longer, then drops it quickly in the middle.",
}

# ---------------------------------------------------------------- sidebar controls
x0, label, notes = image_picker()
sb = st.sidebar
sb.selectbox("Noise schedule", SCHEDULES, **bind(K_SCHEDULE, SCHEDULES, True),
             help="\n\n".join(SCHEDULE_HELP.values()))
sb.number_input("Number of steps T", T_MIN, T_MAX, **bind(K_T, lo=T_MIN, hi=T_MAX), step=50)
sb.number_input("Seed (which noise is drawn)", 0, 2**31 - 1, **bind(K_SEED, lo=0), step=1)
presenter = sb.toggle("Presenter mode (big picture, fewer words)", key="presenter")

T = clamp_T(ss[K_T])
seed = clamp_int(ss[K_SEED], 0, 2**31 - 1, 0)
schedule = make_schedule(ss[K_SCHEDULE] if ss[K_SCHEDULE] in SCHEDULES else "linear", T)
noise = draw_noise(x0.shape, seed)
gray = x0.shape[0] == 1

# ---------------------------------------------------------------- the instant scrubber
if not presenter:
    st.title("Add noise: the forward process")
    st.markdown(
        "A diffusion model learns to **undo** noise. To train it, we first destroy pictures on "
        "purpose: step by step we mix a little Gaussian noise in, until only noise is left. "
        "Drag the slider (or press **Play**) and watch the picture dissolve. The same noise "
        "is used at every step, so you see one smooth path from picture to static."
    )
    for n in notes:
        st.caption(f"ℹ️ {n}")
start = clamp_int(ss.get(K_STEP, 250), 0, T, min(250, T))
html = scrubber_html(x0, noise, schedule, t0=start, presenter=presenter, gray=gray)
st.iframe(html, height=(820 if presenter else 560))

if presenter:
    st.stop()

st.caption(
    "Everything above runs in your browser: the server sent the picture and one noise draw "
    "once, so dragging needs no round trip. The bars on the right are the pixel values; as the "
    "noise takes over they settle onto the red bell curve, N(0, 1): the picture has become "
    "pure Gaussian noise, which is where the reverse process (Restore page) starts."
)

# ---------------------------------------------------------------- one step, in detail


@st.fragment
def detail():
    st.subheader("Look closer at one step")
    step = st.slider("Noise step", 0, T, **bind(K_STEP, lo=0, hi=T),
                     help="0 is the clean picture; T is (almost) pure noise.")
    step = clamp_int(step, 0, T, 0)
    a, b = mix_coefs(schedule, step)
    xt = x_at_step(x0, noise, schedule, step)
    c1, c2, c3 = st.columns([1, 1, 1.3])
    c1.image(to_display(xt), caption=f"x at step {step}", width="stretch")
    c2.image(noise_display(b * noise), caption="its noise part", width="stretch")
    with c3:
        st.markdown(f"#### x = {a:.2f} × image + {b:.2f} × noise")
        ab = a * a
        snr = ab / max(1 - ab, 1e-300)
        st.markdown(
            f"- signal left: **{100 * ab:.1f} %** of the picture's power  \n"
            f"- signal-to-noise ratio: **{snr:.3g}** (log SNR {np.log(max(snr, 1e-300)):.2f})  \n"
            f"- equivalent noise level σ = {sigma_at_step(schedule, step):.3g} "
            f"(≈ {sigma_at_step(schedule, step) * 127.5:.0f} on a 0–255 scale)"
        )
        if step == 0:
            st.info("Step 0 is the untouched picture.")
        elif snr < 0.01:
            st.info("Almost nothing of the picture is left: this is where generation starts.")
    ts = np.arange(1, T + 1)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=ts, y=schedule.alpha_bar, name="ᾱ (signal left)"))
    fig.add_trace(go.Scatter(x=ts, y=np.clip(schedule.log_snr, -20, 20), name="log SNR",
                             yaxis="y2"))
    fig.add_vline(x=max(step, 1), line_color="#d33682")
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10),
                      title=f"{schedule.name} schedule, T = {T}",
                      xaxis_title="step", yaxis=dict(title="ᾱ", range=[0, 1.02]),
                      yaxis2=dict(title="log SNR", overlaying="y", side="right"),
                      legend=dict(orientation="h"))
    centres, dens = histogram(xt)
    hfig = go.Figure()
    hfig.add_trace(go.Bar(x=centres, y=dens, name="pixel values", marker_color="#9ecae1"))
    v = np.linspace(-3.5, 3.5, 200)
    hfig.add_trace(go.Scatter(x=v, y=normal_pdf(v), name="N(0, 1)", line_color="#d62728"))
    hfig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), bargap=0,
                       title="Pixel values against the bell curve", legend=dict(orientation="h"))
    d1, d2 = st.columns(2)
    d1.plotly_chart(fig, width="stretch")
    d2.plotly_chart(hfig, width="stretch")

    st.subheader("Two schedules at the same step")
    other = st.selectbox("Compare with", [s for s in SCHEDULES if s != schedule.name],
                         key="compare_schedule")
    sch2 = make_schedule(other, T)
    a2, b2 = mix_coefs(sch2, step)
    e1, e2 = st.columns(2)
    e1.image(to_display(xt), caption=f"{schedule.name}: {a:.2f} × image + {b:.2f} × noise",
             width="stretch")
    e2.image(to_display(x_at_step(x0, noise, sch2, step)),
             caption=f"{other}: {a2:.2f} × image + {b2:.2f} × noise", width="stretch")


detail()

# ---------------------------------------------------------------- strip + download
st.subheader("Eight stages")
steps8 = strip_steps(T, 8)
frames = [x_at_step(x0, noise, schedule, s) for s in steps8]
strip = strip_image(frames, [f"step {s}" for s in steps8])
st.image(strip, width="stretch")
st.download_button("Download this strip (PNG)", png_bytes(strip),
                   file_name=f"forward_{schedule.name}_T{T}_seed{seed}.png", mime="image/png")
