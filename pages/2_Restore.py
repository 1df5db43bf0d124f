"""Restore: the reverse process, live."""

import functools

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from diffusion_core.jobs.restore_jobs import RestoreJob, planned_steps
from diffusion_core.maths.forward import draw_noise, sigma_at_step, step_for_sigma, x_at_step
from diffusion_core.maths.samplers import SAMPLER_LABELS
from diffusion_core.maths.schedules import SCHEDULES, clamp_T, make_schedule
from diffusion_core.media.export import (
    frames_gif,
    frames_mp4,
    image_png,
    metrics_json,
    preview,
    restore_animation_frames,
    strip_png,
)
from diffusion_core.media.images import ImageLoadError
from diffusion_core.media.viz import noise_display, to_display
from diffusion_core.models.registry import ModelLoadError, get_denoiser, list_models
from diffusion_core.tasks.restore import MAX_STEPS, device_label, pick_device
from ui.nav import sidebar_nav
from ui.session import session_alive_check
from ui.state import (
    K_SCHEDULE,
    K_SEED,
    K_SIZE,
    K_STEP,
    K_T,
    as_default,
    bind,
    clamp_int,
    image_picker,
    init_state,
)

st.set_page_config(page_title="Restore · Diffusion Lab", page_icon="✨", layout="wide")
sidebar_nav()
ss = st.session_state
ss.setdefault(K_SIZE, 256)  # a fresh session starts at 256 px (the Add-noise page uses 512)
init_state("restore")

K_JOB = "restore_job"
MODE_RESTORE, MODE_GENERATE = "restore", "generate"
ADD_NOISE_DEFAULT_STEP = 250  # init_state's untouched value of K_STEP
SIGMA_25 = 2 * 25 / 255  # "25 on the 0-255 scale" in [-1, 1] units
GEN_SIZES = [32, 64, 128, 256]
PREVIEW = dict(max_side=384, min_side=192)
KEEP = "session"  # this page's own settings survive a trip to another page


def clamp_float(v, lo: float, hi: float, default: float) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return default
    return default if v != v else max(lo, min(hi, v))


@st.cache_resource(show_spinner="Loading the model…", max_entries=6)
def load_model(name: str, device: str, version: int):
    """One shared instance per model, device and weights file version."""
    return get_denoiser(name, device)


def model_version(m) -> int:
    p = m.path / "model.safetensors"
    return p.stat().st_mtime_ns if p.exists() else 0


def show(col, x, caption):
    col.image(preview(x, **PREVIEW), caption=caption, width="stretch")


def eps_display(eps: torch.Tensor) -> np.ndarray:
    """Unit Gaussian noise around mid-gray (±2 σ fills the range), like the Add-noise page."""
    return noise_display(0.5 * eps)


def error_display(x0_hat: torch.Tensor, x0: torch.Tensor) -> np.ndarray:
    """Where the guess is wrong: black = right, white = off by a quarter of the range or more."""
    err = (x0_hat - x0).abs().mean(0, keepdim=True)
    return to_display((err * 4).clamp(0, 1) * 2 - 1)


# ---------------------------------------------------------------- sidebar: setup
sb = st.sidebar
mode = sb.radio("Start from", [MODE_RESTORE, MODE_GENERATE], key="restore_mode",
                persist_state=KEEP, **as_default("restore_mode", [MODE_RESTORE, MODE_GENERATE],
                                                 "index"),
                format_func=lambda m: ("A noisy photo (restore)" if m == MODE_RESTORE
                                       else "Pure noise (generate)"))
models = list_models()
photo_models = [m for m in models if m.kind == "photo"]
digit_models = [m for m in models if m.kind == "digits" or m.name == "digits"]

x0 = None
notes: list[str] = []
label = ""
if mode == MODE_RESTORE:
    try:
        x0, label, notes = image_picker()
    except ImageLoadError as e:
        st.error(f"The picture could not be loaded: {e}")
        st.stop()
    choices = photo_models
else:
    choices = digit_models + [m for m in models if m not in digit_models]

if not choices:
    st.title("Restore: the reverse process")
    st.error("No photo model is installed, so there is nothing to restore with. Train one on "
             "the Train page or put a model folder in models/ (see the README).")
    st.stop()

names = [m.name for m in choices]
model_key = f"restore_model_{mode}"
if ss.get(model_key) not in names:
    ss[model_key] = names[0]
sb.selectbox("Model", names, key=model_key, persist_state=KEEP,
             **as_default(model_key, names, "index"),
             format_func=lambda n: next(m.label for m in choices if m.name == n))
info = next(m for m in choices if m.name == ss[model_key])
if info.card.get("error"):
    sb.warning(f"{info.label}: {info.card['error']}")

if mode == MODE_GENERATE and info.channels != 1:
    sb.select_slider("Size of the invented picture", GEN_SIZES, value=128,
                     key="restore_gen_size", persist_state=KEEP)

dev_options = ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])
if ss.get("restore_device") not in dev_options:
    ss["restore_device"] = "auto"
sb.selectbox("Device", dev_options, key="restore_device", persist_state=KEEP,
             **as_default("restore_device", dev_options, "index"),
             format_func=lambda d: (f"auto: {device_label(pick_device('auto'))}" if d == "auto"
                                    else {"cpu": "CPU", "cuda": "GPU (CUDA)"}[d]))
sb.number_input("Seed (which noise is drawn)", 0, 2**31 - 1, **bind(K_SEED, lo=0), step=1,
                help="The same seed and picture size give the same noise as the Add-noise page.")

# ---------------------------------------------------------------- main: what to run
T = clamp_T(ss[K_T])
sched_name = ss[K_SCHEDULE] if ss[K_SCHEDULE] in SCHEDULES else "linear"
schedule = make_schedule(sched_name, T)
seed = clamp_int(ss[K_SEED], 0, 2**31 - 1, 0)

st.title("Restore: the reverse process")
st.markdown(
    "A trained network looks at a noisy picture and guesses the clean one. Take a small step "
    "towards its guess, look again, guess again: step by step the noise drains away. Press "
    "**Run** and watch both the picture and the network's current guess."
)
for n in notes:
    st.caption(f"ℹ️ {n}")

if mode == MODE_GENERATE and info.kind == "photo":
    st.info(
        ("No handwritten-digits model is installed yet, so the photo model is used. " if not
         digit_models else "")
        + "The photo model learned to *clean* photos, not to draw them: started from pure "
        "noise it invents textures (blotches, edges, patches of colour) rather than a "
        "recognisable picture. That is still the reverse process at work, just with nothing "
        "to hold on to."
    )

# the noise step: follows the Add-noise page, else a typical noisy photo (sigma 25/255)
if mode == MODE_RESTORE:
    shared = ss.get(K_STEP)
    if "restore_step" not in ss:
        if shared is not None and shared != ADD_NOISE_DEFAULT_STEP:
            ss["restore_step"] = clamp_int(shared, 1, T, 1)
        else:
            ss["restore_step"] = step_for_sigma(schedule, SIGMA_25)
        ss["restore_seen_shared_step"] = shared
    elif shared != ss.get("restore_seen_shared_step"):
        ss["restore_step"] = clamp_int(shared, 1, T, 1)  # moved on the Add-noise page
        ss["restore_seen_shared_step"] = shared
    ss["restore_step"] = clamp_int(ss["restore_step"], 1, T, step_for_sigma(schedule, SIGMA_25))

ss.setdefault("restore_steps", 25)
ss.setdefault("restore_sampler", "ddim")
ss.setdefault("restore_eta", 0.0)
c1, c2, c3, c4 = st.columns([2.2, 1.4, 0.9, 0.9])
if mode == MODE_RESTORE:
    c1.slider("Noise step to start from", 1, T, key="restore_step", persist_state=KEEP,
              **as_default("restore_step", lo=1, hi=T),
              help="How noisy the picture is before the model cleans it (the same steps as "
                   "on the Add-noise page). Small = a grainy photo; large = almost nothing left.")
    step = clamp_int(ss["restore_step"], 1, T, 1)
    sig = sigma_at_step(schedule, step)
    c1.caption(f"σ = {sig:.3g} ≈ {sig * 127.5:.0f} on the 0–255 scale · {sched_name} schedule, "
               f"T = {T} (set on the Add-noise page)")
else:
    step = T
    c1.markdown(f"**Start:** pure noise (step {T} of the {sched_name} schedule).")
c2.selectbox("Sampler", list(SAMPLER_LABELS), key="restore_sampler", persist_state=KEEP,
             **as_default("restore_sampler", SAMPLER_LABELS, "index"),
             format_func=lambda s: SAMPLER_LABELS[s])
c3.number_input("Steps", 1, MAX_STEPS, key="restore_steps", step=1, persist_state=KEEP,
                **as_default("restore_steps", lo=1, hi=MAX_STEPS),
                help="Network calls on the way back (Heun uses two per step).")
sampler = ss["restore_sampler"] if ss["restore_sampler"] in SAMPLER_LABELS else "ddim"
if sampler == "ddim":
    c4.slider("eta", 0.0, 1.0, key="restore_eta", step=0.1, persist_state=KEEP,
              **as_default("restore_eta", lo=0.0, hi=1.0),
              help="0: deterministic. 1: fresh noise at every step, like DDPM.")
elif sampler in ("dpmpp_2m", "heun"):
    c4.caption("Visits the noise levels spaced as in Karras et al. (more of them near the "
               "clean end), where this solver is most accurate with few steps.")
eta = clamp_float(ss.get("restore_eta", 0.0), 0.0, 1.0, 0.0) if sampler == "ddim" else 0.0
steps = clamp_int(ss["restore_steps"], 1, MAX_STEPS, 25)
n_plan = planned_steps(step, steps)
if n_plan < steps:
    c3.caption(f"Only {n_plan} step{'s' if n_plan != 1 else ''} possible from noise step {step}.")

job: RestoreJob | None = ss.get(K_JOB)
running = job is not None and not job.done


def start_run():
    device_name = ss.get("restore_device", "auto")
    if device_name not in dev_options:
        device_name = "auto"
    device = pick_device(device_name)
    try:
        den = load_model(info.name, str(device), model_version(info))
    except ModelLoadError as e:
        ss["restore_start_error"] = str(e)
        return
    except Exception as e:  # noqa: BLE001 - e.g. an unusable device
        ss["restore_start_error"] = (f"The model “{info.name}” could not be loaded on "
                                     f"{device} ({type(e).__name__}).")
        return
    if mode == MODE_RESTORE:
        image = x0
        if den.channels == 1 and image.shape[0] == 3:
            image = image.mean(0, keepdim=True)
        shape = tuple(image.shape)
    else:
        image = None
        side = 32 if den.channels == 1 else int(ss.get("restore_gen_size", 128))
        side = side if side in GEN_SIZES else 128
        shape = (den.channels, side, side)
    settings = {"mode": mode, "model": info.name, "sampler": sampler, "steps": steps,
                "noise_step": step, "T": T, "schedule": sched_name, "eta": eta, "seed": seed,
                "sigma": sigma_at_step(schedule, step), "size": list(shape[1:]),
                "image": label if mode == MODE_RESTORE else None, "device": device_label(device)}
    ss[K_JOB] = RestoreJob(den, image, schedule, step, steps, sampler=sampler, seed=seed,
                           eta=eta, device=device, shape=shape, settings=settings,
                           alive=session_alive_check()).start()
    ss.pop("restore_start_error", None)


b1, b2 = st.columns([1, 5])
if b1.button("▶ Run", type="primary", disabled=running, width="stretch") and not running:
    start_run()
    job = ss.get(K_JOB)
    running = job is not None and not job.done
if ss.get("restore_start_error"):
    st.error(ss["restore_start_error"])
if job is None:
    b2.caption("Pick a picture and press Run. Fewer steps are faster; the page shows every "
               "step as it happens, and Stop keeps what has been computed so far.")
if job is not None and job.done:
    job.announced = True  # this full run shows it; the live view must not ask for another

# before a run (or when the settings changed since the last one): where the run will start
current = {"mode": mode, "model": info.name, "noise_step": step, "seed": seed,
           "image": label if mode == MODE_RESTORE else None,
           "size": list(x0.shape[1:]) if x0 is not None else None}
last = job.settings if job is not None else None
changed = last is not None and any(last.get(k) != v for k, v in current.items()
                                   if k != "size" or v is not None)
if not running and mode == MODE_RESTORE and (job is None or changed):
    if changed:
        st.info("The settings changed since the last run (its result is further down). "
                "Press Run to restore with the new ones.")
    r1, r2, _ = st.columns(3)
    show(r1, x0, f"{label}: the original")
    show(r2, x_at_step(x0, draw_noise(x0.shape, seed), schedule, step),
         f"where the run starts: noise step {step}")


# ---------------------------------------------------------------- live view


@st.fragment(run_every=0.3 if running else None)
def live_view():
    job: RestoreJob | None = ss.get(K_JOB)
    if job is None:
        return
    if job.done and not job.announced:
        st.rerun()  # the run just ended: redraw the whole page with the results
    if job.done:  # the results (if any) are drawn below, outside this fragment
        if job.state == "failed":
            st.error(job.error)
        elif job.result is None:
            st.info("Stopped before the run started: nothing was computed.")
        return
    snap = job.snapshot()
    n, i = max(snap["n"], 1), snap["i"]
    lat = snap["latest"]
    text = {"new": "Starting…",
            "waiting": "Waiting: another run is using the model; yours starts next."}.get(
        snap["state"], f"Step {i} of {n}" + (f" · noise step {lat['step']}" if lat else "")
        + f" · {snap['elapsed']:.1f} s")
    p1, p2 = st.columns([5, 1])
    p1.progress(min(i / n, 1.0), text=text)
    p2.button("■ Stop", on_click=job.stop, disabled=job.stop_requested, width="stretch",
              key=f"restore_stop_{job.id}")
    v1, v2 = st.columns(2)
    if lat is None:
        start = job.image if job.image is not None else None
        if start is not None:
            show(v1, start, "the picture (the noise goes on when the run starts)")
        return
    show(v1, lat["x_t"], f"the picture now (x_t at noise step {lat['step']})")
    show(v2, lat["x0_hat"], "what the model thinks the picture is (x̂₀)")


live_view()

# ---------------------------------------------------------------- results
if job is None or not job.done or job.result is None:
    st.stop()

res = job.result
cfg = job.settings
known = job.image is not None and cfg.get("mode") == MODE_RESTORE
fm = res.final_metrics

st.divider()
st.header("The result")
st.caption(
    f"{cfg['model']} model · {SAMPLER_LABELS.get(cfg['sampler'], cfg['sampler'])} · "
    f"{res.steps_run} of {res.steps_requested} steps requested · "
    + (f"from noise step {cfg['noise_step']} (σ ≈ {cfg['sigma'] * 127.5:.0f}/255)"
       if known else "from pure noise")
    + f" · seed {cfg['seed']} · {cfg['size'][1]}×{cfg['size'][0]} px"
)
if job.state == "stopped":
    st.warning(f"Stopped after {res.steps_run} of {job.n} steps"
               + (" (the page was disconnected)" if job.abandoned else "")
               + ": below is what was computed so far (the model's latest guess).")
if getattr(res, "note", ""):
    st.info(res.note)

cards: list[tuple] = []  # (label, value, delta, help)
if known:
    cards += [("Noisy input PSNR", f"{fm.get('noisy_psnr', float('nan')):.2f} dB", None,
               "Peak signal-to-noise ratio against the original: higher is closer."),
              ("Restored PSNR", f"{fm.get('psnr', float('nan')):.2f} dB",
               f"{fm.get('psnr', 0) - fm.get('noisy_psnr', 0):+.2f} dB", None),
              ("Restored SSIM", f"{fm.get('ssim', float('nan')):.3f}", None,
               "Structural similarity to the original: 1 is identical.")]
else:
    cards.append(("Steps", f"{res.steps_run}", None, None))
cards += [("Time", f"{res.seconds:.2f} s", None, "Sampling only (not loading the model)."),
          ("Steps per second", f"{res.steps_per_s:.2f}", None, None)]
if res.peak_memory_mb is not None:
    cards.append(("Peak GPU memory", f"{res.peak_memory_mb:.0f} MB", None, None))
elif job.peak_rss_mb is not None:
    cards.append(("Peak memory", f"{job.peak_rss_mb:.0f} MB", None,
                  "Peak memory of the whole server process so far (it is shared)."))
for col, (name, value, delta, tip) in zip(st.columns(6), cards):
    col.metric(name, value, delta=delta, help=tip)
st.caption(f"Device: {cfg['device']}")

# before / after
if known:
    a1, a2, a3 = st.columns(3)
    show(a1, res.start, "noisy input")
    show(a2, res.final, f"restored ({res.steps_run} steps)")
    show(a3, job.image, "original")
else:
    a1, a2, _ = st.columns(3)
    show(a1, res.start, "pure noise (the start)")
    show(a2, res.final, f"generated ({res.steps_run} steps)")


# ---------------------------------------------------------------- scrubber


@st.fragment
def scrubber():
    frames = res.frames
    if not frames:
        return
    st.subheader("Step through the run")
    key = f"restore_frame_{job.id}"
    by_step = {fr.i + 1: fr for fr in frames}  # every kept frame, by sampler step (1-based)
    if len(frames) > 1:
        k = st.select_slider("Sampler step", list(by_step), value=frames[0].i + 1, key=key,
                             help="Drag to see every stage the model went through"
                             + (" (long runs keep every few steps)." if job.frame_every > 1
                                else "."))
    else:  # one step only: nothing to slide through
        k = frames[0].i + 1
    f = by_step.get(k, frames[0])
    st.caption(f"Sampler step {f.i + 1} of {job.n} · noise step {f.step} · σ = {f.sigma:.3g}")
    cols = st.columns(5 if known else 3)
    show(cols[0], f.x_t, "x_t: the picture now")
    show(cols[1], f.x0_hat, "x̂₀: what the model thinks the picture is")
    cols[2].image(preview(eps_display(f.eps_hat), **PREVIEW), width="stretch",
                  caption="ε̂: the noise the model sees")
    if known:
        cols[3].image(preview(eps_display(res.noise), **PREVIEW), width="stretch",
                      caption="ε: the noise really added")
        cols[4].image(preview(error_display(f.x0_hat, job.image), **PREVIEW), width="stretch",
                      caption="where x̂₀ is wrong (brighter = more wrong)")


scrubber()

# ---------------------------------------------------------------- metrics chart
if known and res.metrics:
    xs = [r["i"] + 1 for r in res.metrics]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=[r["psnr"] for r in res.metrics], name="PSNR of x̂₀ (dB)",
                             mode="lines+markers",
                             customdata=[[r["step"], r["sigma"]] for r in res.metrics],
                             hovertemplate="sampler step %{x} (noise step %{customdata[0]})"
                                           "<br>PSNR %{y:.2f} dB<extra></extra>"))
    fig.add_trace(go.Scatter(x=xs, y=[r["ssim"] for r in res.metrics], name="SSIM of x̂₀",
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
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"))
    st.plotly_chart(fig, width="stretch")

    one = fm.get("one_step_x0_psnr")
    nums = (f" In this run the first guess scored **{one:.2f} dB** and the final picture "
            f"**{fm.get('psnr', float('nan')):.2f} dB**." if one is not None else "")
    st.markdown(
        "**Why can the first guess score better than the finished picture?** At the first "
        "step the model's guess x̂₀ is the *average* of every picture that could hide under "
        "this noise: smooth, a little blurry, and close to the original on average, which is "
        "exactly what PSNR rewards. Running more steps commits to *one* plausible picture "
        "instead: sharper, with real-looking texture, but every invented detail that differs "
        "from the original costs PSNR. Looking right and measuring close pull in different "
        "directions (the *perception–distortion trade-off*)." + nums + " Start from a large "
        "noise step and almost nothing of the original is left: the model then invents "
        "detail that was never there."
    )

# ---------------------------------------------------------------- downloads


def cached(kind: str, make):
    if kind not in job.cache:
        job.cache[kind] = make()
    return job.cache[kind]


def _anim_frames():
    return restore_animation_frames(job.image if known else None, res.noise, job.schedule,
                                    job.step, res)


small = max(cfg["size"]) < 96  # the digits: enlarge so the animation is watchable
mk_gif = functools.partial(cached, "gif", lambda: frames_gif(_anim_frames(), max_side=384,
                                                             min_side=256 if small else None))
mk_mp4 = functools.partial(cached, "mp4", lambda: frames_mp4(_anim_frames(), max_side=384,
                                                             min_side=256 if small else None))
mk_strip = functools.partial(cached, "strip", lambda: strip_png(res))
mk_png = functools.partial(cached, "png", lambda: image_png(res.final))
mk_json = functools.partial(cached, "json", lambda: metrics_json(res, extra=cfg))

st.subheader("Take it with you")
stem = (f"restore_{cfg['model']}_{cfg['sampler']}_{res.steps_run}steps_t{cfg['noise_step']}"
        f"_seed{cfg['seed']}")
d = st.columns(5)
d[0].download_button("Animation (GIF)", mk_gif, file_name=f"{stem}.gif", mime="image/gif",
                     on_click="ignore", width="stretch", key="dl_gif")
d[1].download_button("Animation (MP4)", mk_mp4, file_name=f"{stem}.mp4", mime="video/mp4",
                     on_click="ignore", width="stretch", key="dl_mp4")
d[2].download_button("Stages (PNG strip)", mk_strip, file_name=f"{stem}_strip.png",
                     mime="image/png", on_click="ignore", width="stretch", key="dl_strip")
d[3].download_button("Restored picture (PNG)", mk_png, file_name=f"{stem}.png",
                     mime="image/png", on_click="ignore", width="stretch", key="dl_png")
d[4].download_button("Metrics (JSON)", mk_json, file_name=f"{stem}.json",
                     mime="application/json", on_click="ignore", width="stretch", key="dl_json")
st.caption("The animations show the picture being noised, then restored"
           + (" (from pure noise, only the restoring part)." if not known else "."))
