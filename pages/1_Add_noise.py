"""Add noise: the forward process, scrubbed live."""

import streamlit as st

from diffusion_core.app.forward import STRIP_SHOWN_SIDE, ForwardView
from diffusion_core.maths.schedules import SCHEDULE_NOTES, SCHEDULES, T_MAX, T_MIN
from diffusion_core.media.viz import noise_display, png_bytes, to_display
from diffusion_core.units import SEED_MAX
from ui.figures import pixel_histogram_chart, schedule_chart
from ui.nav import sidebar_nav
from ui.picker import image_picker, show_notes
from ui.scrubber import scrubber_html
from ui.state import K_SCHEDULE, K_SEED, K_STEP, K_T, bind, init_state

st.set_page_config(page_title="Add noise · Diffusion Lab", page_icon="🌫️", layout="wide")
sidebar_nav()
init_state("noise")
ss = st.session_state

# ---------------------------------------------------------------- sidebar controls
x0, label, notes = image_picker()
with st.sidebar:
    st.selectbox("Noise schedule", SCHEDULES, **bind(K_SCHEDULE, SCHEDULES, True),
                 help="\n\n".join(SCHEDULE_NOTES[s] for s in SCHEDULES))
    st.number_input("Number of steps T", T_MIN, T_MAX, **bind(K_T, lo=T_MIN, hi=T_MAX), step=50)
    st.number_input("Seed (which noise is drawn)", 0, SEED_MAX, **bind(K_SEED, lo=0), step=1)
    presenter = st.toggle("Presenter mode (big picture, fewer words)", key="presenter")

view = ForwardView.clamped(x0, schedule=ss[K_SCHEDULE], T=ss[K_T], seed=ss[K_SEED])

# ---------------------------------------------------------------- the instant scrubber
if not presenter:
    st.title("Add noise: the forward process")
    st.markdown(
        "A diffusion model learns to **undo** noise. To train it, we first destroy pictures on "
        "purpose: step by step we mix a little Gaussian noise in, until only noise is left. "
        "Drag the slider (or press **Play**) and watch the picture dissolve. The same noise "
        "is used at every step, so you see one smooth path from picture to static."
    )
    show_notes(notes)
html = scrubber_html(x0, view.noise, view.schedule, t0=view.clamp_step(ss.get(K_STEP)),
                     presenter=presenter, gray=view.gray)
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
    step = st.slider("Noise step", 0, view.T, **bind(K_STEP, lo=0, hi=view.T),
                     help="0 is the clean picture; T is (almost) pure noise.")
    at = view.at(view.clamp_step(step, 0))
    c1, c2, c3 = st.columns([1, 1, 1.3])
    c1.image(to_display(at.x_t), caption=f"x at step {at.step}", width="stretch")
    c2.image(noise_display(at.noise_part), caption="its noise part", width="stretch")
    with c3:
        st.markdown(f"#### x = {at.a:.2f} × image + {at.b:.2f} × noise")
        st.markdown(
            f"- signal left: **{100 * at.signal:.1f} %** of the picture's power  \n"
            f"- signal-to-noise ratio: **{at.snr:.3g}** (log SNR {at.log_snr:.2f})  \n"
            f"- equivalent noise level σ = {at.sigma:.3g} "
            f"(≈ {at.sigma_255:.0f} on a 0–255 scale)"
        )
        if at.step == 0:
            st.info("Step 0 is the untouched picture.")
        elif at.nearly_gone:
            st.info("Almost nothing of the picture is left: this is where generation starts.")
    d1, d2 = st.columns(2)
    d1.vega_lite_chart(spec=schedule_chart(view, at.step), width="stretch")
    d2.vega_lite_chart(spec=pixel_histogram_chart(at.x_t), width="stretch")
    st.caption(SCHEDULE_NOTES[view.schedule.name])

    st.subheader("Two schedules at the same step")
    other_name = st.selectbox("Compare with", view.other_schedules(), key="compare_schedule")
    other = view.with_schedule(other_name)
    there = other.at(at.step)
    e1, e2 = st.columns(2)
    e1.image(to_display(at.x_t),
             caption=f"{view.schedule.name}: {at.a:.2f} × image + {at.b:.2f} × noise", width="stretch")
    e2.image(to_display(there.x_t),
             caption=f"{other.schedule.name}: {there.a:.2f} × image + {there.b:.2f} × noise",
             width="stretch")


detail()

# ---------------------------------------------------------------- strip + download
st.subheader("Eight stages")
st.image(view.strip(8, max_side=STRIP_SHOWN_SIDE), width="stretch")
st.download_button("Download this strip (PNG)", lambda: png_bytes(view.strip(8)),  # made on click
                   file_name=view.strip_file_name, mime="image/png")
