"""Train: train your own small diffusion model in the browser, live."""

import uuid

import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image

from diffusion_core.media.uploads import IMAGE_EXTS, ZIP_EXTS, ingest, list_images
from diffusion_core.media.viz import grid_image
from diffusion_core.models.registry import sanitize_name
from diffusion_core.training import train_jobs as tj
from ui.nav import sidebar_nav
from ui.state import as_default, clamp_int, init_state

st.set_page_config(page_title="Train · Diffusion Lab", page_icon="🏋️", layout="wide")
sidebar_nav()
init_state()
ss = st.session_state
KEEP = "session"  # this page's settings survive a trip to another page

K_DATASET, K_PRESET, K_NAME = "train_dataset", "train_preset", "train_name"
ADV = {"steps": "train_steps", "batch": "train_batch", "lr": "train_lr", "size": "train_size",
       "schedule": "train_schedule", "patch": "train_patch",
       "preview_every": "train_preview_every"}
UPLOAD_TYPES = sorted(e.lstrip(".") for e in IMAGE_EXTS | ZIP_EXTS)
HAS_GPU = torch.cuda.is_available()


def clamp_float(v, lo: float, hi: float, default: float) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return default
    return default if v != v else max(lo, min(hi, v))


def fmt_duration(s) -> str:
    if s is None or s != s or s == float("inf"):
        return "…"
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def device_text(s) -> str:
    return str(s).replace(", 1 threads", ", 1 thread") if s else "…"


def big(im: Image.Image, width: int = 420) -> Image.Image:
    """Scale a small preview up with sharp pixels."""
    k = max(1, width // max(im.width, 1))
    return im.resize((im.width * k, im.height * k), Image.NEAREST) if k > 1 else im


def upload_folder():
    token = ss.setdefault("train_upload_token", uuid.uuid4().hex[:16])
    return tj.uploads_dir() / token


# ---------------------------------------------------------------- actions (callbacks)


def on_start():
    dataset = ss.get(K_DATASET, "digits")
    preset = ss.get(K_PRESET)
    if preset not in tj.PRESETS or tj.PRESETS[preset].dataset != dataset:
        preset = tj.presets_for(dataset)[0].key
    overrides = {k: ss.get(key) for k, key in ADV.items()}
    res = tj.start_training(ss.get(K_NAME, ""), preset, overrides,
                            data_folder=upload_folder() if dataset == "own" else None,
                            replace=bool(ss.get("train_replace")))
    ss["train_message"] = None if res.ok else res.message
    if res.ok:
        ss["train_my_job"] = res.job.id
        ss["train_replace"] = False


def on_resume(name: str):
    more = None
    run = next((r for r in tj.list_runs() if r.name == name), None)
    if run is not None and run.finished:
        more = clamp_int(ss.get(ADV["steps"]), *tj.LIMITS["steps"], 1000)
    res = tj.resume_training(name, more_steps=more)
    ss["train_message"] = None if res.ok else res.message
    if res.ok:
        ss["train_my_job"] = res.job.id


def on_stop():
    tj.stop_training()


def on_clear_uploads():
    import shutil

    shutil.rmtree(upload_folder(), ignore_errors=True)
    ss["train_uploader_n"] = ss.get("train_uploader_n", 0) + 1
    ss["train_ingested"] = []
    ss.pop("train_upload_report", None)


job = tj.current_job()
running = job is not None and not job.done
mine = job is not None and ss.get("train_my_job") == job.id

# ---------------------------------------------------------------- intro
st.title("Train your own diffusion model")
st.markdown(
    "A diffusion model is a network that has practised one thing over and over: **take a "
    "picture with noise on it and guess the clean picture**, at every amount of noise, from a "
    "light sprinkle to pure static. Here you watch that practice happen. Pick some pictures, "
    "press **Start**, and see the error go down and the model's attempts get better."
)

if running and not mine:
    st.warning(
        f"Another training job is running on this server right now: “{job.name}”. Only one "
        "model can train at a time; you can watch it below. A new one can start when it "
        "finishes or is stopped."
    )

# ---------------------------------------------------------------- 1. data
st.header("1 · What should it learn from?")
datasets = list(tj.DATASETS)
if ss.get(K_DATASET) not in datasets:
    ss[K_DATASET] = "digits"
st.radio("Pictures", datasets, key=K_DATASET, horizontal=True, persist_state=KEEP,
         **as_default(K_DATASET, datasets, "index"),
         format_func=lambda d: tj.DATASETS[d], disabled=running)
dataset = ss[K_DATASET] if ss[K_DATASET] in datasets else "digits"

if dataset == "own":
    st.caption("Upload several pictures at once, or one zip file of pictures (PNG, JPEG, "
               "WebP, BMP, TIFF, GIF). They are checked one by one, shrunk to at most 512 "
               "pixels and kept on this server only for your training.")
    ups = st.file_uploader("Your pictures, or a zip of them", type=UPLOAD_TYPES,
                           accept_multiple_files=True, max_upload_size=200,
                           key=f"train_uploader_{ss.get('train_uploader_n', 0)}",
                           disabled=running)
    seen = set(ss.get("train_ingested", []))
    new = [u for u in (ups or []) if u.file_id not in seen]
    if new:
        tj.prune_uploads(keep=upload_folder())
        with st.spinner("Checking your pictures…"):
            summary = ingest(new, upload_folder())
        ss["train_ingested"] = list(seen | {u.file_id for u in new})
        ss["train_upload_report"] = {"message": summary.message(), "errors": summary.errors,
                                     "skipped": summary.skipped, "accepted": summary.accepted}
    rep = ss.get("train_upload_report")
    if rep:
        for err in rep["errors"]:
            st.error(err)
        if rep["accepted"]:
            st.success(rep["message"])
        elif rep["skipped"] or not rep["errors"]:
            st.error(f"{rep['message']} None of those files is a picture that can be used.")
        if rep["skipped"]:
            with st.expander(f"Skipped files ({len(rep['skipped'])})"):
                # names come from the user's files: shown as plain table cells, never markdown
                rows = rep["skipped"][:200]
                st.dataframe({"File": [n for n, _ in rows], "Why it was skipped": [r for _, r in rows]},
                             hide_index=True, width="stretch")
    if list_images(upload_folder()):
        st.button("Remove all my pictures", on_click=on_clear_uploads, disabled=running)

folder = upload_folder() if dataset == "own" else None
try:
    examples, count = tj.dataset_preview(dataset, folder, n=24 if dataset == "digits" else 16)
except Exception as e:  # noqa: BLE001 - the preview is a courtesy; training can still run
    examples, count = torch.zeros(0, 3, 8, 8), 0
    st.warning(f"The preview could not be drawn ({type(e).__name__}).")
if count:
    g1, g2 = st.columns([2, 3])
    g1.image(big(grid_image(examples, nrow=8), 520), width="stretch",
             caption=f"Some of the {count:,} pictures it will learn from")
    g2.markdown(f"**{count:,} pictures:** {tj.describe_dataset(dataset, count)}.")
    g2.caption(
        "During training the model sees these pictures (random crops of them, for photos) "
        "with a random amount of noise added, and is scored on how well it guesses the clean "
        "picture. It never sees the same noisy version twice."
    )
elif dataset == "own":
    st.info("No pictures yet: upload some above. A few dozen varied photos are a good start.")

# ---------------------------------------------------------------- 2. preset
st.header("2 · How long should it practise?")
presets = tj.presets_for(dataset)
keys = [p.key for p in presets]
if ss.get(K_PRESET) not in keys:
    ss[K_PRESET] = next((p.key for p in presets if p.gpu == HAS_GPU), keys[0])
st.radio("Preset", keys, key=K_PRESET, persist_state=KEEP, disabled=running,
         **as_default(K_PRESET, keys, "index"),
         format_func=lambda k: tj.PRESETS[k].label)
preset = tj.PRESETS[ss[K_PRESET] if ss[K_PRESET] in keys else keys[0]]
st.caption(preset.blurb)
if preset.gpu and not HAS_GPU:
    st.warning("This preset is meant for a GPU and there is none here: on this computer's CPU "
               "it would take hours. Choose the shorter preset, or fewer steps below.")

defaults = tj.effective_settings(preset.key)
if ss.get("train_adv_for") not in (None, preset.key):  # another preset: its own defaults
    for k, key in ADV.items():
        ss[key] = defaults[k]
ss["train_adv_for"] = preset.key
for k, key in ADV.items():
    ss.setdefault(key, defaults[k])


def adv_default(k: str) -> dict:
    """The advanced setting ``k`` as its number box's default, within the server's bounds."""
    lo, hi = tj.LIMITS[k]
    return as_default(ADV[k], lo=lo, hi=hi)


with st.expander("Advanced settings"):
    a1, a2, a3 = st.columns(3)
    a1.number_input("Training steps", *tj.LIMITS["steps"], key=ADV["steps"], step=100,
                    **adv_default("steps"),
                    persist_state=KEEP, disabled=running,
                    help="How many practice rounds. Each round is one batch of pictures.")
    a2.number_input("Batch size", *tj.LIMITS["batch"], key=ADV["batch"], step=8,
                    **adv_default("batch"),
                    persist_state=KEEP, disabled=running,
                    help="Pictures per practice round: bigger is steadier but slower.")
    a3.number_input("Learning rate", *tj.LIMITS["lr"], key=ADV["lr"], step=1e-4,
                    **adv_default("lr"),
                    format="%.5f", persist_state=KEEP, disabled=running,
                    help="How big each correction is. Too big and training goes wild.")
    b1, b2, b3 = st.columns(3)
    b1.selectbox("Model size", list(tj.MODEL_SIZES), key=ADV["size"], persist_state=KEEP,
                 **as_default(ADV["size"], tj.MODEL_SIZES, "index"),
                 format_func=lambda s: tj.MODEL_SIZE_LABELS[s], disabled=running)
    b2.selectbox("Learning-rate schedule", list(tj.LR_SCHEDULES), key=ADV["schedule"],
                 **as_default(ADV["schedule"], tj.LR_SCHEDULES, "index"),
                 persist_state=KEEP, format_func=lambda s: tj.LR_SCHEDULES[s],
                 disabled=running)
    b3.number_input("New samples every … steps", *tj.LIMITS["preview_every"],
                    key=ADV["preview_every"], step=10, persist_state=KEEP, disabled=running,
                    **adv_default("preview_every"))
    if dataset != "digits":
        st.number_input("Crop size (pixels)", *tj.LIMITS["patch"], key=ADV["patch"], step=16,
                        **adv_default("patch"),
                        persist_state=KEEP, disabled=running,
                        help="Photos are cut into square crops of this size for practice.")

settings = tj.effective_settings(preset.key, {k: ss.get(key) for k, key in ADV.items()})
st.caption(
    f"{settings['steps']:,} steps of {settings['batch']} pictures · learning rate "
    f"{settings['lr']:g} · {tj.MODEL_SIZE_LABELS[settings['size']].split(' (')[0].lower()} "
    f"network · new samples every {settings['preview_every']} steps"
)

# ---------------------------------------------------------------- 3. name and start
st.header("3 · Name it and start")
ss.setdefault(K_NAME, f"my-{dataset}")
st.text_input("Name of your model", key=K_NAME, max_chars=60, persist_state=KEEP,
              **as_default(K_NAME),
              disabled=running, help="Letters, digits, '-' and '_'; anything else becomes '-'.")
name = sanitize_name(ss.get(K_NAME, ""))
if name != ss.get(K_NAME):
    st.caption(f"It will be saved as **{name}**.")
problem = tj.name_problem(name)
runs = {r.name: r for r in tj.list_runs()}
if problem and not running:
    if name in tj.shipped_names():
        st.warning(problem)
    else:
        st.info(problem)
        st.checkbox(f"Start over: replace “{name}”", key="train_replace")

c1, c2, c3, _ = st.columns([1, 1, 1, 3])
can_start = (not running and (not problem or (ss.get("train_replace") and name not in
                                              tj.shipped_names()))
             and (dataset != "own" or bool(list_images(upload_folder()))))
c1.button("▶ Start", type="primary", on_click=on_start, disabled=not can_start,
          key="train_start", width="stretch")
c2.button("■ Stop", on_click=on_stop, disabled=not running, key="train_stop",
          width="stretch")


def resume_help(r) -> str:
    if not r.finished:
        return f"Continue “{r.name}” from step {r.step:,} of {r.total:,}."
    return (f"“{r.name}” finished its {r.total:,} steps: train it for the number of training "
            "steps set above, on top.")


if name in runs and not running:
    r = runs[name]
    c3.button("▶ Resume" if not r.finished else "▶ Train longer", on_click=on_resume,
              args=(name,), key="train_resume", width="stretch", help=resume_help(r))
if ss.get("train_message"):
    st.error(ss["train_message"])
others = [r for r in runs.values() if r.name != name]
if others and not running:
    with st.expander(f"Earlier runs on this server ({len(runs)})"):
        st.caption("Every run keeps a checkpoint: stopped ones continue where they left off.")
        for r in others[:20]:
            e1, e2 = st.columns([4, 1])
            e1.markdown(f"**{r.name}** · step {r.step:,} of {r.total:,}"
                        + (" · finished" if r.finished else " · stopped"))
            e2.button("▶ Resume" if not r.finished else "▶ Train longer", on_click=on_resume,
                      args=(r.name,), key=f"train_resume_{r.name}", help=resume_help(r))

job = tj.current_job()
running = job is not None and not job.done

# ---------------------------------------------------------------- live view


def loss_figure(snap) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=snap["curve_steps"], y=snap["curve_loss"], mode="lines",
                             name="loss", line=dict(color="#1f77b4")))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=40, b=10),
                      title="How wrong its guesses are (training loss; lower is better)",
                      xaxis_title="training step", yaxis_title="loss", yaxis_type="log",
                      xaxis=dict(range=[0, max(snap["total"], 1)]), showlegend=False)
    return fig


@st.fragment(run_every=1.0 if running else None)
def live_view():
    job = tj.current_job()
    if job is None:
        return
    snap = job.snapshot()
    if job.done and ss.get("train_announced") != job.id:
        ss["train_announced"] = job.id
        st.rerun()  # redraw the whole page once: the buttons, and no more polling
    st.divider()
    st.header(f"Training “{snap['name']}”")
    st.caption("What is happening: the model is learning to remove noise from these pictures, "
               "at every noise level, one batch at a time.")
    total, step = max(snap["total"], 1), snap["step"]
    state = snap["state"]
    if state == "starting":
        text = ("Preparing the pictures…" if snap["kind"] == "digits" else
                "Preparing the pictures (the synthetic ones take a little while)…")
    elif state == "saving":
        text = "Saving the model…"
    else:
        text = (f"Step {step:,} of {total:,} · {snap['steps_per_s']:.1f} steps/s · "
                f"elapsed {fmt_duration(snap['elapsed_s'])}")
        if state == "running":
            text += f" · about {fmt_duration(snap['eta_s'])} left"
    st.progress(min(step / total, 1.0), text=text)
    if state in ("starting", "running") and snap["stop_requested"]:
        st.caption("Stopping: the model is saved at the next step…")
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Step", f"{step:,} / {total:,}")
    m2.metric("Loss now", f"{snap['curve_loss'][-1]:.3f}" if snap["curve_loss"] else "–")
    m3.metric("Speed", f"{snap['steps_per_s']:.1f} steps/s")
    m4.metric("Time left", fmt_duration(snap["eta_s"]) if state == "running" else "–")
    st.caption(f"Running on: {device_text(snap['device'])}")
    l1, l2 = st.columns([3, 2])
    with l1:
        if snap["curve_steps"]:
            st.plotly_chart(loss_figure(snap), width="stretch", key="train_loss_chart")
        st.caption(
            "Each step the model gets a batch of pictures with random amounts of noise and "
            "tries to remove it; the loss measures how far its guesses are from the clean "
            "pictures. It drops fast at first, then slowly: the easy part (blurry shapes) is "
            "learnt first, the fine detail later."
        )
    with l2:
        if snap["preview"] is not None:
            if snap["kind"] == "digits":
                cap = (f"At step {snap['preview_step']:,}: 16 digits the model draws from pure "
                       "noise (12 denoising steps, the same noise every time)")
            else:
                cap = (f"At step {snap['preview_step']:,}: noisy crops (top) and the model's "
                       "clean-up of them (bottom)")
            if snap["preview_step"] <= snap["start_step"] + 1:
                cap += ". It has not learnt anything yet: this is what it makes untrained."
            else:
                cap += f". New ones every {snap['preview_every']:,} steps."
            st.image(big(snap["preview"], 420), caption=cap, width="stretch")
        else:
            st.info("Samples appear as soon as training starts.")
        st.caption("Samples come from a running average of the model's weights (its 'EMA'), "
                   "which is steadier than the latest weights.")
    if state in ("starting", "running", "saving"):
        st.caption("You can leave this page or close the browser: training goes on on the "
                   "server, and coming back here shows it again.")


live_view()

# ---------------------------------------------------------------- results
if job is None or not job.done:
    st.stop()
snap = job.snapshot()
if snap["state"] == "failed":
    st.error(snap["error"] or "Training failed.")
    if snap["name"] in {r.name for r in tj.list_runs()}:
        st.caption("The last checkpoint is kept: Resume continues from it.")
    st.stop()
if snap["card"] is None:
    st.info("Stopped before the first training step: nothing was saved.")
    st.stop()
card = snap["card"]
if snap["state"] == "stopped":
    st.success(f"Stopped at step {snap['step']:,} of {snap['total']:,}. The model "
               f"**{snap['name']}** is saved as it is now; pick it on the Restore page, or "
               "press Resume to continue.")
else:
    who = "Your model" if mine or ss.get("train_my_job") == job.id else "The model"
    st.success(f"{who} **{snap['name']}** is saved; pick it on the Restore page.")
loss = card.get("final_loss")
st.markdown(
    f"- **Trained on:** {card.get('data') or '–'}\n"
    f"- **Steps:** {card.get('steps', 0):,} of {card.get('batch', 0)} pictures each\n"
    f"- **Training time:** {fmt_duration(card.get('wall_time_s'))} on {device_text(card.get('hardware'))}\n"
    f"- **Final loss:** {f'{loss:.4f}' if loss is not None else '–'}"
)
st.caption(f"{card.get('parameters', 0):,} parameters · folder {snap['model_dir']}")
with st.expander("The model's card (everything recorded about it)"):
    st.json(card, expanded=False)
