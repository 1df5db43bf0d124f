"""Cost of steps: how many steps are enough, and what each one costs (measured live)."""

import pandas as pd
import streamlit as st

from diffusion_core.app.cost import (
    DEFAULT_SAMPLERS,
    DEFAULT_STEP_COUNTS,
    NOISES,
    PREFERRED_MODEL,
    REFERENCE_STEPS,
    SIZES,
    STEP_CHOICES,
    CostRequest,
    StudyResults,
    progress,
)
from diffusion_core.app.models import photo_models
from diffusion_core.maths.samplers import SPECS
from diffusion_core.tasks.steps_study import plain_words_summary
from diffusion_core.units import SEED_MAX
from ui.figures import cost_charts
from ui.job_watch import progress_with_stop, watch
from ui.models import KEEP, model_select, run_button
from ui.nav import sidebar_nav
from ui.picker import image_picker, show_notes
from ui.state import K_SCHEDULE, K_SEED, K_T, as_default, bind, init_state

st.set_page_config(page_title="Cost of steps · Diffusion Lab", page_icon="⏱️", layout="wide")
sidebar_nav()
init_state("cost", {"cost_size": 128, "cost_noise": 50, "cost_samplers": list(DEFAULT_SAMPLERS),
                    "cost_steps": list(DEFAULT_STEP_COUNTS), "cost_score": "original"})
ss = st.session_state

# ---------------------------------------------------------------- sidebar
x_full, label, notes = image_picker()
st.sidebar.number_input("Seed (which noise is drawn)", 0, SEED_MAX, **bind(K_SEED, lo=0), step=1)
models = photo_models()

st.title("Cost of steps: how many are enough?")
st.markdown(
    "Every step of the reverse process is one trip through the whole network, so fewer "
    "steps means a faster picture. But how few can we get away with? Here the same noisy "
    "picture is cleaned again and again, with different recipes (samplers) and numbers of "
    "steps, and every result is timed and scored. A small copy of the picture keeps the "
    "whole measurement to about a minute on an ordinary computer."
)
show_notes(notes)
if not models:
    st.error("No photo model is installed, so there is nothing to measure. Train one on the "
             "Train page or put a model folder in models/ (see the README).")
    st.stop()
info = model_select(st.sidebar, "cost_model", models, preferred=PREFERRED_MODEL, labels=False,
                    always=False)

# ---------------------------------------------------------------- settings (clamped here)
req = CostRequest.clamped(model=info.name, schedule=ss[K_SCHEDULE], T=ss[K_T], seed=ss[K_SEED],
                          size=ss.get("cost_size"), noise=ss.get("cost_noise"),
                          samplers=ss.get("cost_samplers"), steps=ss.get("cost_steps"), image=label)
ss.update({f"cost_{k}": v for k, v in req.widget_values().items()})

c1, c2 = st.columns(2)
c1.select_slider("Picture size (pixels)", SIZES, key="cost_size", persist_state=KEEP,
                 **as_default("cost_size", SIZES),
                 help="The longest side of the copy that is measured. Each step costs about "
                      "four times as much when the side doubles.")
c2.select_slider("How noisy the start is", NOISES, key="cost_noise", persist_state=KEEP,
                 **as_default("cost_noise", NOISES),
                 format_func=lambda v: f"σ {v}/255",
                 help="The noise on the 0–255 scale of the pixels: 25 is a grainy photo, "
                      "100 leaves only the rough shapes.")
c3, c4 = st.columns(2)
c3.multiselect("Samplers", list(SPECS), key="cost_samplers", persist_state=KEEP,
               **as_default("cost_samplers", SPECS, "default"),
               format_func=lambda s: SPECS[s].short_name,
               help="\n\n".join(f"**{spec.short_name}**: {spec.label}" for spec in SPECS.values()))
c4.multiselect("Numbers of steps to try", STEP_CHOICES, key="cost_steps", persist_state=KEEP,
               **as_default("cost_steps", STEP_CHOICES, "default"))

x0 = req.picture(x_full)
st.caption(
    f"{label} at {x0.shape[-1]}×{x0.shape[-2]} px · noise step {req.noise_step} of the "
    f"{req.schedule.name} schedule (T = {req.T}, σ = {req.sigma:.3g}) · seed {req.seed} · the "
    f"yardstick is DDIM with {REFERENCE_STEPS} steps"
    + (f" (only {req.reference_run} are possible from this start)"
       if req.reference_run < REFERENCE_STEPS else "")
    + f" · **{req.calls} network calls** in all."
)

b1, b2 = st.columns([1, 5])
job = run_button(b1, "▶ Measure", "cost_job", "cost_start_error", req.model, req.run_device(),
                 lambda den: req.start(den, x0, req.run_device()), disabled=req.problem is not None,
                 key="cost_run")
if req.problem:
    b2.warning(req.problem)
elif job is None:
    b2.caption("Press Measure: the page cleans the picture once per sampler and number of "
               "steps and shows the scores as charts. Stop keeps the runs finished so far.")


# ---------------------------------------------------------------- live progress


def live_view(job, snap):
    progress_with_stop(job, *progress(snap), key="cost")
    if snap["rows"]:
        st.caption(f"{len(snap['rows'])} run{'s' if len(snap['rows']) != 1 else ''} finished.")


watch(lambda: ss.get("cost_job"), live_view, every=0.5, key="cost_job")

# ---------------------------------------------------------------- results
if job is None or not job.done:
    st.stop()
if job.state == "failed":
    st.error(f"The measurement failed: {job.error}")
    st.stop()
if job.state == "stopped":
    st.warning(f"Stopped: below are the {len(job.rows)} runs finished before the stop."
               if job.rows else "Stopped before any run finished: nothing to show yet.")
if not job.rows:
    st.stop()
if req.changed_since(job.settings, x0):
    st.info("The settings changed since this measurement: press Measure to run the new ones.")

cfg = job.settings
st.divider()
st.header("What we found")
st.caption(f"{cfg['image']} at {cfg['size'][0]}×{cfg['size'][1]} px · σ {cfg['noise_255']}/255 "
           f"(noise step {cfg['step']}) · seed {cfg['seed']} · {cfg['device']}")
st.success(plain_words_summary(job.rows))

score = st.radio("Score each result against", StudyResults.SCORES, key="cost_score",
                 horizontal=True, persist_state=KEEP,
                 **as_default("cost_score", StudyResults.SCORES, "index"),
                 format_func=lambda v: ("the original picture (PSNR)" if v == "original" else
                                        f"the {job.rows[0]['reference_steps']}-step DDIM result "
                                        "(agreement)"))
found = StudyResults(job.rows, score)
g1, g2 = st.columns(2)
quality, cost = cost_charts(found)
g1.plotly_chart(quality, width="stretch", key="cost_quality_chart")
g2.plotly_chart(cost, width="stretch", key="cost_time_chart")
if found.has_identical:
    st.caption("A point at the very top is the long run itself (identical, so no finite score).")

st.subheader("Why can a few steps be enough?")
st.markdown(
    "- **Each step is one full trip through the network** (Heun makes two per step, to check "
    "its own move, except on the last step). The network's work is the same at every step, "
    "so the time grows in a straight line with the number of calls: the right-hand chart.\n"
    "- **DDPM**, the original recipe, adds a little fresh noise at every step and undoes it "
    "again: that is why it was trained and run with a thousand tiny steps, and why it "
    "wanders when the steps get big.\n"
    "- **DDIM** uses the same trained network without the fresh noise: the path from noise "
    "to picture becomes a smooth, fixed road, and a smooth road can be travelled in big "
    "strides. Ten or twenty steps land close to where a thousand would.\n"
    "- **Higher-order solvers** (Heun, DPM-Solver++) also look at how the road has been "
    "bending, like a driver who steers into a curve instead of reacting to it, so each "
    "stride can land closer to the road. Heun pays with a second network call per step; "
    "DPM-Solver++ reuses the previous step's guess and stays at one call per step. How well "
    "the trick works depends on where the steps fall: DDIM and DDPM here step evenly in "
    "time, while Heun and DPM-Solver++ put more of their steps near the end, where the last "
    "fine details are decided (the spacing of Karras et al.); with ten steps that brings "
    "them within a hair of a run with hundreds. Compare the curves to see which one settles "
    "first here.\n"
    "- **Why does one step already score so well against the original?** The first guess is "
    "the *average* of every picture that could hide under the noise: a little blurry, but "
    "close on average, which is what PSNR rewards. More steps commit to one sharper "
    "picture; switch the chart to *the long run* to see when each sampler has settled."
)

st.subheader("Every run")
st.dataframe(pd.DataFrame(found.table()), hide_index=True, width="stretch")
st.caption(f"The noisy start scores {job.rows[0]['noisy_psnr']:.2f} dB; the "
           f"{found.reference_steps}-step DDIM yardstick {job.rows[0]['reference_psnr']:.2f} dB. "
           "An empty agreement cell is the yardstick itself. Times are for the sampling only, "
           "on a computer that may be busy with other work.")
