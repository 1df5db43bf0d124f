"""Cost of steps: how many steps are enough, and what each one costs (measured live)."""

import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from diffusion_core.maths.forward import sigma_at_step, step_for_sigma
from diffusion_core.maths.samplers import SAMPLER_LABELS
from diffusion_core.maths.schedules import SCHEDULES, clamp_T, make_schedule
from diffusion_core.media.images import ImageLoadError
from diffusion_core.models.registry import ModelLoadError, get_denoiser, list_models
from diffusion_core.tasks.restore import MAX_STEPS, device_label, pick_device
from diffusion_core.tasks.steps_study import (
    SHORT_NAMES,
    StudyJob,
    effective_steps,
    plain_words_summary,
    planned_calls,
)
from ui.nav import sidebar_nav
from ui.state import (
    K_SCHEDULE,
    K_SEED,
    K_T,
    as_default,
    bind,
    clamp_int,
    image_picker,
    init_state,
)

st.set_page_config(page_title="Cost of steps · Diffusion Lab", page_icon="⏱️", layout="wide")
sidebar_nav()
init_state("cost")
ss = st.session_state

K_JOB = "cost_job"
KEEP = "session"
SIZES = [32, 64, 96, 128, 192, 256]
NOISES = [10, 25, 50, 100, 200]  # sigma on the 0-255 scale
STEP_CHOICES = [1, 2, 3, 5, 10, 15, 20, 25, 50, 100]
REFERENCE_STEPS = 250
MAX_CALLS = 3000  # a server-side ceiling, whatever the widgets say
COLOURS = {"ddim": "#1f77b4", "dpmpp_2m": "#2ca02c", "heun": "#ff7f0e", "ddpm": "#d62728"}

ss.setdefault("cost_size", 128)
ss.setdefault("cost_noise", 50)
ss.setdefault("cost_samplers", ["ddim", "dpmpp_2m", "heun"])
ss.setdefault("cost_steps", [1, 2, 5, 10, 25])
ss.setdefault("cost_score", "original")


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def load_model(name: str, device: str, version: int):
    return get_denoiser(name, device)


def model_version(m) -> int:
    p = m.path / "model.safetensors"
    return p.stat().st_mtime_ns if p.exists() else 0


def shrink(x: torch.Tensor, side: int) -> torch.Tensor:
    """The picture with its longest side at most ``side`` pixels (antialiased)."""
    h, w = x.shape[-2:]
    if max(h, w) <= side:
        return x
    k = side / max(h, w)
    size = (max(8, round(h * k)), max(8, round(w * k)))
    out = torch.nn.functional.interpolate(x[None], size=size, mode="bilinear", antialias=True,
                                          align_corners=False)
    return out[0].clamp(-1, 1)


# ---------------------------------------------------------------- sidebar
try:
    x_full, label, notes = image_picker()
except ImageLoadError as e:
    st.error(f"The picture could not be loaded: {e}")
    st.stop()
sb = st.sidebar
sb.number_input("Seed (which noise is drawn)", 0, 2**31 - 1, **bind(K_SEED, lo=0), step=1)
photo_models = [m for m in list_models() if m.kind == "photo"]

st.title("Cost of steps: how many are enough?")
st.markdown(
    "Every step of the reverse process is one trip through the whole network, so fewer "
    "steps means a faster picture. But how few can we get away with? Here the same noisy "
    "picture is cleaned again and again, with different recipes (samplers) and numbers of "
    "steps, and every result is timed and scored. A small copy of the picture keeps the "
    "whole measurement to about a minute on an ordinary computer."
)
for n in notes:
    st.caption(f"ℹ️ {n}")
if not photo_models:
    st.error("No photo model is installed, so there is nothing to measure. Train one on the "
             "Train page or put a model folder in models/ (see the README).")
    st.stop()
names = [m.name for m in photo_models]
if ss.get("cost_model") not in names:
    ss["cost_model"] = "natural" if "natural" in names else names[0]
if len(names) > 1:
    sb.selectbox("Model", names, key="cost_model", persist_state=KEEP,
                 **as_default("cost_model", names, "index"))
info = next(m for m in photo_models if m.name == ss["cost_model"])

# ---------------------------------------------------------------- settings (clamped here)
T = clamp_T(ss[K_T])
sched_name = ss[K_SCHEDULE] if ss[K_SCHEDULE] in SCHEDULES else "linear"
schedule = make_schedule(sched_name, T)
seed = clamp_int(ss[K_SEED], 0, 2**31 - 1, 0)

for key, options, default in (("cost_size", SIZES, 128), ("cost_noise", NOISES, 50)):
    if ss.get(key) not in options:
        ss[key] = default
ss["cost_samplers"] = [s for s in (ss.get("cost_samplers") or []) if s in SAMPLER_LABELS]
ss["cost_steps"] = [k for k in (ss.get("cost_steps") or []) if k in STEP_CHOICES]

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
c3.multiselect("Samplers", list(SAMPLER_LABELS), key="cost_samplers", persist_state=KEEP,
               **as_default("cost_samplers", SAMPLER_LABELS, "default"),
               format_func=lambda s: SHORT_NAMES.get(s, s),
               help="\n\n".join(f"**{SHORT_NAMES[s]}**: {SAMPLER_LABELS[s]}"
                                for s in SAMPLER_LABELS))
c4.multiselect("Numbers of steps to try", STEP_CHOICES, key="cost_steps", persist_state=KEEP,
               **as_default("cost_steps", STEP_CHOICES, "default"))

size = ss["cost_size"] if ss["cost_size"] in SIZES else 128
noise_255 = ss["cost_noise"] if ss["cost_noise"] in NOISES else 50
samplers = [s for s in SAMPLER_LABELS if s in ss["cost_samplers"]]
steps_list = sorted({clamp_int(k, 1, MAX_STEPS, 1) for k in ss["cost_steps"]})
step = clamp_int(step_for_sigma(schedule, 2 * noise_255 / 255), 1, T, 1)
x0 = shrink(x_full, size)
calls = planned_calls(step, samplers, steps_list, REFERENCE_STEPS) if samplers and steps_list else 0
ref_n = effective_steps(step, REFERENCE_STEPS)
h, w = x0.shape[-2:]
st.caption(
    f"{label} at {w}×{h} px · noise step {step} of the {sched_name} schedule (T = {T}, σ = "
    f"{sigma_at_step(schedule, step):.3g}) · seed {seed} · the yardstick is DDIM with "
    f"{REFERENCE_STEPS} steps" + (f" (only {ref_n} are possible from this start)"
                                  if ref_n < REFERENCE_STEPS else "")
    + f" · **{calls} network calls** in all."
)

problem = None
if not samplers:
    problem = "Pick at least one sampler."
elif not steps_list:
    problem = "Pick at least one number of steps."
elif calls > MAX_CALLS:
    problem = (f"That is {calls} network calls, more than the {MAX_CALLS} this page allows. "
               "Choose fewer samplers, fewer or smaller numbers of steps, or less noise.")

job: StudyJob | None = ss.get(K_JOB)
running = job is not None and not job.done


def start_run():
    device = pick_device("auto")
    try:
        den = load_model(info.name, str(device), model_version(info))
    except ModelLoadError as e:
        ss["cost_start_error"] = str(e)
        return
    except Exception as e:  # noqa: BLE001 - e.g. an unusable device
        ss["cost_start_error"] = (f"The model “{info.name}” could not be loaded on {device} "
                                  f"({type(e).__name__}).")
        return
    settings = {"model": info.name, "image": label, "size": [w, h], "noise_255": noise_255,
                "step": step, "T": T, "schedule": sched_name, "seed": seed,
                "samplers": samplers, "steps": steps_list, "device": device_label(device)}
    ss[K_JOB] = StudyJob(den, x0, schedule, step, samplers, steps_list, seed=seed,
                         reference_steps=REFERENCE_STEPS, device=device,
                         settings=settings).start()
    ss.pop("cost_start_error", None)


b1, b2 = st.columns([1, 5])
if b1.button("▶ Measure", type="primary", disabled=running or problem is not None,
             width="stretch", key="cost_run") and not running and problem is None:
    start_run()
    job = ss.get(K_JOB)
    running = job is not None and not job.done
if problem:
    b2.warning(problem)
elif job is None:
    b2.caption("Press Measure: the page cleans the picture once per sampler and number of "
               "steps and shows the scores as charts. Stop keeps the runs finished so far.")
if ss.get("cost_start_error"):
    st.error(ss["cost_start_error"])
if job is not None and job.done:
    job.announced = True


# ---------------------------------------------------------------- live progress


@st.fragment(run_every=0.5 if running else None)
def live_view():
    job: StudyJob | None = ss.get(K_JOB)
    if job is None:
        return
    if job.done and not job.announced:
        st.rerun()  # finished: redraw the whole page with the results
    if job.done:
        return
    snap = job.snapshot()
    total, done = max(snap["total"], 1), snap["calls_done"]
    if snap["state"] in ("new", "waiting"):
        text = "Waiting: another run is using the model; yours starts next."
    else:
        what = snap["current"]
        now = ("the yardstick (DDIM, the long run)" if what is None
               else f"{SHORT_NAMES.get(what[0], what[0])} with {what[1]} "
                    f"step{'s' if what[1] != 1 else ''}")
        left = snap["elapsed"] / done * (total - done) if done else float("nan")
        text = (f"Now: {now} · network call {done} of {total} · {snap['elapsed']:.0f} s"
                + (f" · about {left:.0f} s left" if math.isfinite(left) else ""))
    p1, p2 = st.columns([5, 1])
    p1.progress(min(done / total, 1.0), text=text)
    p2.button("■ Stop", on_click=job.stop, disabled=job.stop_requested, width="stretch",
              key="cost_stop")
    if snap["rows"]:
        st.caption(f"{len(snap['rows'])} run{'s' if len(snap['rows']) != 1 else ''} finished.")


live_view()

# ---------------------------------------------------------------- results
if job is None or not job.done:
    st.stop()
if job.state == "failed":
    st.error(f"The measurement failed: {job.error}")
    st.stop()
rows = job.rows
cfg = job.settings
if job.state == "stopped":
    st.warning(f"Stopped: below are the {len(rows)} runs finished before the stop."
               if rows else "Stopped before any run finished: nothing to show yet.")
if not rows:
    st.stop()

current = {"model": info.name, "image": label, "size": [w, h], "noise_255": noise_255,
           "seed": seed, "samplers": samplers, "steps": steps_list, "T": T,
           "schedule": sched_name}
if any(cfg.get(k) != v for k, v in current.items()):
    st.info("The settings changed since this measurement: press Measure to run the new ones.")

st.divider()
st.header("What we found")
st.caption(f"{cfg['image']} at {cfg['size'][0]}×{cfg['size'][1]} px · σ {cfg['noise_255']}/255 "
           f"(noise step {cfg['step']}) · seed {cfg['seed']} · {cfg['device']}")
st.success(plain_words_summary(rows))

score = st.radio("Score each result against", ["original", "reference"], key="cost_score",
                 horizontal=True, persist_state=KEEP,
                 **as_default("cost_score", ["original", "reference"], "index"),
                 format_func=lambda v: ("the original picture (PSNR)" if v == "original" else
                                        f"the {rows[0]['reference_steps']}-step DDIM result "
                                        "(agreement)"))
key = "psnr" if score == "original" else "psnr_vs_reference"
order = [s for s in SAMPLER_LABELS if any(r["sampler"] == s for r in rows)]
finite_agree = [r["psnr_vs_reference"] for r in rows if math.isfinite(r["psnr_vs_reference"])]
cap = max(finite_agree + [40.0]) + 5  # "identical" (infinite agreement) is drawn at the top


def y_of(r) -> float:
    v = r[key]
    return cap if math.isinf(v) else v


fig = go.Figure()
tfig = go.Figure()
for s in order:
    mine = sorted((r for r in rows if r["sampler"] == s), key=lambda r: r["steps"])
    xs = [r["steps"] for r in mine]
    custom = [[r["model_calls"], r["seconds"]] for r in mine]
    fig.add_trace(go.Scatter(
        x=xs, y=[y_of(r) for r in mine], name=SHORT_NAMES.get(s, s), mode="lines+markers",
        line=dict(color=COLOURS.get(s)), customdata=custom,
        hovertemplate="%{x} steps · %{customdata[0]} network calls<br>%{y:.2f} dB"
                      "<extra>" + SHORT_NAMES.get(s, s) + "</extra>"))
    tfig.add_trace(go.Scatter(
        x=xs, y=[r["seconds"] for r in mine], name=SHORT_NAMES.get(s, s), mode="lines+markers",
        line=dict(color=COLOURS.get(s)), customdata=custom,
        hovertemplate="%{x} steps · %{customdata[0]} network calls<br>%{y:.2f} s"
                      "<extra>" + SHORT_NAMES.get(s, s) + "</extra>"))
if key == "psnr":
    fig.add_hline(y=rows[0]["noisy_psnr"], line_dash="dot", line_color="#888",
                  annotation_text="the noisy start", annotation_position="bottom right")
    fig.add_hline(y=rows[0]["reference_psnr"], line_dash="dash", line_color="#555",
                  annotation_text=f"{rows[0]['reference_steps']}-step DDIM",
                  annotation_position="top right")
    title, ytitle = "How close to the original?", "PSNR against the original (dB)"
else:
    fig.add_hline(y=35, line_dash="dot", line_color="#888",
                  annotation_text="35 dB: differences too small to see",
                  annotation_position="bottom right")
    title, ytitle = "How close to the long run?", "agreement with the long run (dB)"
axis = dict(title="number of steps (log scale)", type="log", tickvals=sorted({r["steps"] for r in rows}))
legend = dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right")
fig.update_layout(height=380, margin=dict(l=10, r=10, t=50, b=10), title=title, xaxis=axis,
                  yaxis=dict(title=ytitle), legend=legend)
tfig.update_layout(height=380, margin=dict(l=10, r=10, t=50, b=10),
                   title="What did it cost?", xaxis=axis,
                   yaxis=dict(title="seconds (sampling only)"), legend=legend)
g1, g2 = st.columns(2)
g1.plotly_chart(fig, width="stretch", key="cost_quality_chart")
g2.plotly_chart(tfig, width="stretch", key="cost_time_chart")
if key == "psnr_vs_reference" and any(math.isinf(r["psnr_vs_reference"]) for r in rows):
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
table = pd.DataFrame([{
    "sampler": SHORT_NAMES.get(r["sampler"], r["sampler"]),
    "steps": r["steps"],
    "network calls": r["model_calls"],
    "PSNR vs original (dB)": round(r["psnr"], 2),
    "SSIM": round(r["ssim"], 3) if math.isfinite(r["ssim"]) else None,
    "agreement with the long run (dB)": (round(r["psnr_vs_reference"], 1)
                                         if math.isfinite(r["psnr_vs_reference"]) else None),
    "seconds": round(r["seconds"], 2),
} for r in rows])
st.dataframe(table, hide_index=True, width="stretch")
st.caption(f"The noisy start scores {rows[0]['noisy_psnr']:.2f} dB; the "
           f"{rows[0]['reference_steps']}-step DDIM yardstick {rows[0]['reference_psnr']:.2f} dB. "
           "An empty agreement cell is the yardstick itself. Times are for the sampling only, "
           "on a computer that may be busy with other work.")
