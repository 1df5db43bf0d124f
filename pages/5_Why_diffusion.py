"""Why diffusion? Train a GAN, a VAE and a diffusion model side by side on 2-D toy data.

Layout and wording only: the form, tables and numbers live in ``diffusion_core.app.toy2d``,
the training runs in background jobs (``diffusion_core.jobs.toy2d``) that this page starts
and watches; everything underneath is ``diffusion_core.toy2d``.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from diffusion_core import toy2d
from diffusion_core.app.toy2d import (
    DEFAULT_DRAWN,
    N_SEED_RUNS,
    SEED_MAX,
    STEPS_MAX,
    STEPS_MIN,
    CompareRequest,
    metrics_rows,
    seeds_have_modes,
    seeds_rows,
)
from ui.job_watch import job_state, kept_result, watch
from ui.nav import sidebar_nav
from ui.session import session_alive_check
from ui.toy2d_view import (
    LIVE_EVERY_S,
    diffusion_panel,
    final_panels,
    live_panels,
    pick_points,
    seeds_live,
)

st.set_page_config(page_title="Why diffusion? · Diffusion Lab", page_icon="⚖️", layout="wide")
sidebar_nav()
ss = st.session_state
K_JOB, K_SEEDS_JOB = "toy2d_job", "toy2d_seeds_job"

st.title("Why diffusion?")
st.markdown(
    "Three kinds of generative model learn the same cloud of points, with the same "
    "network size and the same amount of practice. Watch how each one gets there (or doesn't)."
)

# --------------------------------------------------------------------------- controls
c1, c2, c3 = st.columns([2, 1, 1])
c1.selectbox("Dataset", list(toy2d.DATASETS.values()), key="toy2d_dataset")
c2.number_input("Training steps", min_value=STEPS_MIN, max_value=STEPS_MAX,
                value=toy2d.Budget().steps, step=100, key="toy2d_steps",
                help="Every model gets the same number of steps and batch size.")
c3.number_input("Seed", min_value=0, max_value=SEED_MAX, value=0, step=1, key="toy2d_seed")
st.checkbox("Also train WGAN-GP, the usual fix for GANs (about 5x slower per step)",
            key="toy2d_wgan")
form = CompareRequest.from_form(ss)

if form.dataset == "drawn":
    st.markdown("**Draw your data**: click or lasso points on the grid below, or type them "
                "(one `x, y` per line). Each point becomes a small cluster.")
    d1, d2 = st.columns([3, 2])
    selected = pick_points(d1)
    d2.text_area("Points (x, y)", value=DEFAULT_DRAWN, height=200, key="toy2d_points_text")
    form = CompareRequest.from_form(ss, selected)
    if form.problem:
        st.error(f"Can't use these points: {form.problem}")
    else:
        d2.caption(f"Using {form.drawn_points} {form.drawn_how} point(s).")

job, running = job_state(ss.get(K_JOB))
seeds_job, seeds_running = job_state(ss.get(K_SEEDS_JOB))
b1, b2 = st.columns(2)
if b1.button("Train", type="primary", key="toy2d_train",
             disabled=form.problem is not None or running) and not running:
    ss[K_JOB] = form.compare_job(alive=session_alive_check()).start()
    st.rerun()  # redraw with the run going (the buttons disabled)
if b2.button(f"Run over {N_SEED_RUNS} seeds", key="toy2d_seeds_btn",
             disabled=form.problem is not None or seeds_running,
             help="Trains every model once per seed with the budget above; "
                  "this takes a few minutes at the default budget.") and not seeds_running:
    ss[K_SEEDS_JOB] = form.seeds_job(alive=session_alive_check()).start()
    st.rerun()

# --------------------------------------------------------------------------- training
watch(lambda: ss.get(K_JOB), live_panels, every=LIVE_EVERY_S, key="toy2d", when_done=True)
if job is not None and job.state == "failed":
    st.error(f"Training failed: {job.error}")
elif job is not None and job.state == "stopped":
    st.warning("Stopped: above is how far the models got (no scores). Press **Train** to "
               "start again.")
stored = kept_result(K_JOB, "toy2d_results") if job is None or job.state == "done" else None
if job is None and stored is None:
    st.info("Pick a dataset and press **Train**.")
if stored is not None:
    final_panels(stored)
    st.subheader(f"Results on {stored['label']} (seed {stored['seed']}, "
                 f"{stored['budget'].steps} steps)")
    st.dataframe(pd.DataFrame(metrics_rows(stored)), hide_index=True)
    st.caption(
        "**Modes covered**: a cluster counts when at least 1% of 2,000 samples (and at least 5) "
        "land within 3 standard deviations of its centre. **High-quality share**: samples that "
        "land that close to *some* centre. **Energy distance**: how different the samples are "
        "from fresh data the model never saw (0 = indistinguishable; lower is better)."
    )
if stored is not None and "diffusion" in stored["results"]:
    st.subheader("Inside diffusion: noise in, noise out")
    diffusion_panel(stored)

# --------------------------------------------------------------------------- seeds
st.subheader(f"Is it luck? {N_SEED_RUNS} seeds")
st.caption("One run can be lucky or unlucky. This trains every model once per seed and "
           "counts how often each one finds every cluster.")
watch(lambda: ss.get(K_SEEDS_JOB), seeds_live, key="toy2d_seeds")
if seeds_job is not None and seeds_job.state == "failed":
    st.error(f"The seed run failed: {seeds_job.error}")
seed_state = kept_result(K_SEEDS_JOB, "toy2d_seed_study")
if seed_state is not None:
    st.markdown(f"**{seed_state['label']}**, {len(seed_state['study'].seeds)} seeds, "
                f"{seed_state['study'].budget.steps} steps each "
                f"({seed_state['study'].wall_seconds:.0f} s in all)")
    st.dataframe(pd.DataFrame(seeds_rows(seed_state["study"])), hide_index=True)
    if not seeds_have_modes(seed_state["study"]):
        st.caption("This dataset has no separate clusters, so only the energy distance applies.")
