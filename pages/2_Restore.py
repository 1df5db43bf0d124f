"""Restore: the reverse process, live."""

import streamlit as st

from diffusion_core.app.models import digit_models
from diffusion_core.app.restore import (
    GEN_SIZES,
    MODE_GENERATE,
    MODE_RESTORE,
    MODES,
    RestoreOutcome,
    RestoreRequest,
    first_settings,
    model_choices,
    progress,
)
from diffusion_core.maths.samplers import SPECS
from diffusion_core.media.viz import eps_display, error_display
from diffusion_core.units import MAX_STEPS, SEED_MAX, sigma_to_255
from ui.figures import metric_cards, restore_quality_chart, show
from ui.job_watch import progress_with_stop, watch
from ui.models import (
    KEEP,
    device_defaults,
    device_select,
    estimate_caption,
    measured_speed,
    model_select,
    run_button,
)
from ui.nav import sidebar_nav
from ui.picker import image_picker, show_notes
from ui.session import session_alive_check
from ui.state import K_SCHEDULE, K_SEED, K_SIZE, K_STEP, K_T, as_default, bind, init_state

st.set_page_config(page_title="Restore · Diffusion Lab", page_icon="✨", layout="wide")
sidebar_nav()
init_state("restore", {"restore_sampler": "ddim", "restore_eta": 0.0})
# a first visit starts at the working size and steps that run in about 10 s on this computer
device_defaults("restore", model_choices(MODE_RESTORE), first_settings, (K_SIZE, "restore_steps"))
ss = st.session_state

# ---------------------------------------------------------------- sidebar: setup
mode = st.sidebar.radio("Start from", MODES, key="restore_mode", persist_state=KEEP,
                        **as_default("restore_mode", MODES, "index"),
                        format_func=lambda m: ("A noisy photo (restore)" if m == MODE_RESTORE
                                               else "Pure noise (generate)"))
x0, label, notes = image_picker() if mode == MODE_RESTORE else (None, "", [])
choices = model_choices(mode)
if not choices:
    st.title("Restore: the reverse process")
    st.error("No photo model is installed, so there is nothing to restore with. Train one on "
             "the Train page or put a model folder in models/ (see the README).")
    st.stop()
info = model_select(st.sidebar, f"restore_model_{mode}", choices, warn=True)
if mode == MODE_GENERATE and info.channels != 1:
    st.sidebar.select_slider("Size of the invented picture", GEN_SIZES, value=128,
                             key="restore_gen_size", persist_state=KEEP)
device_select(st.sidebar, "restore_device")
st.sidebar.number_input("Seed (which noise is drawn)", 0, SEED_MAX, **bind(K_SEED, lo=0), step=1,
                        help="The same seed and picture size give the same noise as the Add-noise "
                             "page.")

# ---------------------------------------------------------------- what to run (clamped)
req = RestoreRequest.clamped(
    mode=mode, model=info.name, schedule=ss[K_SCHEDULE], T=ss[K_T], seed=ss[K_SEED],
    noise_step=ss.get("restore_step"), shared_step=ss.get(K_STEP),
    seen_shared_step=ss.get("restore_seen_shared_step"), steps=ss.get("restore_steps"),
    sampler=ss.get("restore_sampler"), eta=ss.get("restore_eta"),
    gen_size=ss.get("restore_gen_size"), device=ss.get("restore_device"), image=label)
ss.update({f"restore_{k}": v for k, v in req.widget_values().items()})

st.title("Restore: the reverse process")
st.markdown(
    "A trained network looks at a noisy picture and guesses the clean one. Take a small step "
    "towards its guess, look again, guess again: step by step the noise drains away. Press "
    "**Run** and watch both the picture and the network's current guess."
)
show_notes(notes)

if mode == MODE_GENERATE and info.kind == "photo":
    st.info(
        ("No handwritten-digits model is installed yet, so the photo model is used. "
         if not digit_models() else "")
        + "The photo model learned to *clean* photos, not to draw particular things. From "
        "pure noise it first settles the picture's overall light and colours, then paints "
        "texture into them: what comes out is a soft, painterly patchwork (earthy browns and "
        "greens, patches of blue and violet, hints of rock, foliage or sky), not anything you "
        "could name. That is still the reverse process at work, just with nothing to hold on "
        "to: start from a noisy photo instead and it finds the photo again."
    )

c1, c2, c3, c4 = st.columns([2.2, 1.4, 0.9, 0.9])
if req.restoring:
    c1.slider("Noise step to start from", 1, req.T, key="restore_step", persist_state=KEEP,
              **as_default("restore_step", lo=1, hi=req.T),
              help="How noisy the picture is before the model cleans it (the same steps as "
                   "on the Add-noise page). Small = a grainy photo; large = almost nothing left.")
    c1.caption(f"σ = {req.sigma:.3g} ≈ {req.sigma_255:.0f} on the 0–255 scale · "
               f"{req.schedule.name} schedule, T = {req.T} (set on the Add-noise page)")
else:
    c1.markdown(f"**Start:** pure noise (step {req.T} of the {req.schedule.name} schedule).")
c2.selectbox("Sampler", list(SPECS), key="restore_sampler", persist_state=KEEP,
             **as_default("restore_sampler", SPECS, "index"), format_func=lambda s: SPECS[s].label)
c3.number_input("Steps", 1, MAX_STEPS, key="restore_steps", step=1, persist_state=KEEP,
                **as_default("restore_steps", lo=1, hi=MAX_STEPS),
                help="Network calls on the way back (Heun uses two per step).")
if req.takes_eta:
    c4.slider("eta", 0.0, 1.0, key="restore_eta", step=0.1, persist_state=KEEP,
              **as_default("restore_eta", lo=0.0, hi=1.0),
              help="0: deterministic. 1: fresh noise at every step, like DDPM.")
elif req.karras:
    c4.caption("Visits the noise levels spaced as in Karras et al. (more of them near the "
               "clean end), where this solver is most accurate with few steps.")
if req.planned < req.steps:
    c3.caption(f"Only {req.planned} step{'s' if req.planned != 1 else ''} possible from noise "
               f"step {req.noise_step}.")

b1, b2 = st.columns([1, 5])
job = run_button(b1, "▶ Run", "restore_job", "restore_start_error", req.model, req.run_device,
                 lambda den: req.start(den, x0, alive=session_alive_check()))
estimate_caption(b2, req.estimate(measured_speed(info, req.run_device), x0, info.channels))
if job is None:
    b2.caption("Pick a picture and press Run. Fewer steps are faster; the page shows every "
               "step as it happens, and Stop keeps what has been computed so far.")

# before a run (or when the settings changed since the last one): where the run will start
if before := req.before_run(job, x0):
    if before == "changed":
        st.info("The settings changed since the last run (its result is further down). "
                "Press Run to restore with the new ones.")
    r1, r2, _ = st.columns(3)
    show(r1, x0, f"{label}: the original")
    show(r2, req.start_picture(x0), f"where the run starts: noise step {req.noise_step}")


# ---------------------------------------------------------------- live view


def live_view(job, snap):
    progress_with_stop(job, *progress(snap), key="restore")
    v1, v2 = st.columns(2)
    if snap["latest"] is not None:
        show(v1, snap["latest"]["x_t"], f"the picture now (x_t at noise step {snap['latest']['step']})")
        show(v2, snap["latest"]["x0_hat"], "what the model thinks the picture is (x̂₀)")
    elif job.image is not None:
        show(v1, job.image, "the picture (the noise goes on when the run starts)")


if job is not None and job.state == "failed":
    st.error(job.error)
elif job is not None and job.done and job.result is None:
    st.info("Stopped before the run started: nothing was computed.")
watch(lambda: ss.get("restore_job"), live_view, every=1.0, key="restore_job")

# ---------------------------------------------------------------- results
if job is None or not job.done or job.result is None:
    st.stop()

out = RestoreOutcome(job)
res, cfg = out.result, out.settings

st.divider()
st.header("The result")
st.caption(
    f"{cfg['model']} model · {SPECS[cfg['sampler']].label if cfg['sampler'] in SPECS else cfg['sampler']} · "
    f"{res.steps_run} of {res.steps_requested} steps requested · "
    + (f"from noise step {cfg['noise_step']} (σ ≈ {sigma_to_255(cfg['sigma']):.0f}/255)"
       if out.known else "from pure noise")
    + f" · seed {cfg['seed']} · {cfg['size'][1]}×{cfg['size'][0]} px"
)
if job.state == "stopped":
    st.warning(f"Stopped after {res.steps_run} of {job.n} steps"
               + (" (the page was disconnected)" if job.abandoned else "")
               + ": below is what was computed so far (the model's latest guess).")
if res.note:
    st.info(res.note)
metric_cards(out.cards(), st.columns(6))
st.caption(f"Device: {cfg['device']}")

# before / after
a1, a2, a3 = st.columns(3)
show(a1, res.start, "noisy input" if out.known else "pure noise (the start)")
show(a2, res.final, f"{'restored' if out.known else 'generated'} ({res.steps_run} steps)")
if out.known:
    show(a3, job.image, "original")


# ---------------------------------------------------------------- scrubber


@st.fragment
def scrubber():
    st.subheader("Step through the run")
    k = (st.select_slider("Sampler step", out.frame_steps(), value=out.frame_steps()[0],
                          key=f"restore_frame_{job.id}",
                          help="Drag to see every stage the model went through"
                          + (" (long runs keep every few steps)." if job.frame_every > 1 else "."))
         if len(res.frames) > 1 else None)  # one step only: nothing to slide through
    f = out.frame(k)
    st.caption(f"Sampler step {f.i + 1} of {job.n} · noise step {f.step} · σ = {f.sigma:.3g}")
    cols = st.columns(5 if out.known else 3)
    show(cols[0], f.x_t, "x_t: the picture now")
    show(cols[1], f.x0_hat, "x̂₀: what the model thinks the picture is")
    show(cols[2], eps_display(f.eps_hat), "ε̂: the noise the model sees")
    if out.known:
        show(cols[3], eps_display(res.noise), "ε: the noise really added")
        show(cols[4], error_display(f.x0_hat, job.image), "where x̂₀ is wrong (brighter = more wrong)")


if res.frames:
    scrubber()

# ---------------------------------------------------------------- metrics chart
if out.known and res.metrics:
    st.plotly_chart(restore_quality_chart(res), width="stretch")
    st.markdown(
        "**Why can the first guess score better than the finished picture?** At the first "
        "step the model's guess x̂₀ is the *average* of every picture that could hide under "
        "this noise: smooth, a little blurry, and close to the original on average, which is "
        "exactly what PSNR rewards. Running more steps commits to *one* plausible picture "
        "instead: sharper, with real-looking texture, but every invented detail that differs "
        "from the original costs PSNR. Looking right and measuring close pull in different "
        "directions (the *perception–distortion trade-off*)."
        + (f" In this run the first guess scored **{res.final_metrics['one_step_x0_psnr']:.2f} dB** "
           f"and the final picture **{res.final_metrics.get('psnr', float('nan')):.2f} dB**."
           if res.final_metrics.get("one_step_x0_psnr") is not None else "")
        + " Start from a large noise step and almost nothing of the original is left: the "
        "model then invents detail that was never there. With the shipped photo model, from "
        "step 700 of the linear schedule it keeps the photo's overall brightness and main "
        "colours but not its objects; from step 900 even the colours drift."
    )

# ---------------------------------------------------------------- downloads
st.subheader("Take it with you")
d = st.columns(5)
d[0].download_button("Animation (GIF)", out.gif, file_name=f"{out.stem}.gif", mime="image/gif",
                     on_click="ignore", width="stretch", key="dl_gif")
d[1].download_button("Animation (MP4)", out.mp4, file_name=f"{out.stem}.mp4", mime="video/mp4",
                     on_click="ignore", width="stretch", key="dl_mp4")
d[2].download_button("Stages (PNG strip)", out.strip, file_name=f"{out.stem}_strip.png",
                     mime="image/png", on_click="ignore", width="stretch", key="dl_strip")
d[3].download_button("Restored picture (PNG)", out.png, file_name=f"{out.stem}.png",
                     mime="image/png", on_click="ignore", width="stretch", key="dl_png")
d[4].download_button("Metrics (JSON)", out.json, file_name=f"{out.stem}.json",
                     mime="application/json", on_click="ignore", width="stretch", key="dl_json")
st.caption("The animations show the picture being noised, then restored"
           + (" (from pure noise, only the restoring part)." if not out.known else "."))
