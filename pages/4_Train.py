"""Train: train your own small diffusion model in the browser, live."""

import streamlit as st
import torch

from diffusion_core.app.train import (
    TrainRequest,
    card_lines,
    prepare_form,
    remember,
    runs_by_name,
    settings_line,
)
from diffusion_core.jobs.train import current_job, resume_or_extend, stop_training
from diffusion_core.media.viz import grid_image
from diffusion_core.training.presets import (
    DATASETS,
    LIMITS,
    LR_SCHEDULES,
    MODEL_SIZE_LABELS,
    MODEL_SIZES,
    PRESETS,
    describe_dataset,
    draws_pictures,
    presets_for,
)
from diffusion_core.training.previews import dataset_overview
from diffusion_core.training.runs import UPLOAD_TYPES, UploadBox, resume_help
from ui.job_watch import job_state, watch
from ui.nav import sidebar_nav
from ui.state import as_default, init_state
from ui.train_view import big, conditional_option, training_panel, upload_report

st.set_page_config(page_title="Train · Diffusion Lab", page_icon="🏋️", layout="wide")
sidebar_nav()
init_state()
ss = st.session_state
KEEP = "session"  # this page's settings survive a trip to another page
HAS_GPU = torch.cuda.is_available()
box: UploadBox = ss.setdefault("train_uploads", UploadBox())
prepare_form(ss, HAS_GPU)  # a dataset, its preset, the preset's settings, a name
form = TrainRequest.from_form(ss, box.folder)
job, running = job_state(current_job())


def on_start():
    remember(ss, TrainRequest.from_form(ss, box.folder).start())


def on_resume(name: str):
    remember(ss, resume_or_extend(name, ss.get("train_steps")))


def limits(key: str) -> dict:
    """A number box's bounds on the server, and the session's value as its default."""
    return as_default(f"train_{key}", lo=LIMITS[key][0], hi=LIMITS[key][1])


# ---------------------------------------------------------------- intro
st.title("Train your own diffusion model")
st.markdown(
    "A diffusion model is a network that has practised one thing over and over: **take a "
    "picture with noise on it and guess the clean picture**, at every amount of noise, from a "
    "light sprinkle to pure static. Here you watch that practice happen. Pick some pictures, "
    "press **Start**, and see the error go down and the model's attempts get better."
)
if running and ss.get("train_my_job") != job.id:
    st.warning(
        f"Another training job is running on this server right now: “{job.name}”. Only one "
        "model can train at a time; you can watch it below. A new one can start when it "
        "finishes or is stopped."
    )

# ---------------------------------------------------------------- 1. data
st.header("1 · What should it learn from?")
st.radio("Pictures", list(DATASETS), key="train_dataset", horizontal=True, persist_state=KEEP,
         **as_default("train_dataset", DATASETS, "index"),
         format_func=DATASETS.get, disabled=running)

if form.dataset == "own":
    st.caption("Upload several pictures at once, or one zip file of pictures (PNG, JPEG, "
               "WebP, BMP, TIFF, GIF). They are checked one by one, shrunk to at most 512 "
               "pixels and kept on this server only for your training.")
    uploads = st.file_uploader("Your pictures, or a zip of them", type=UPLOAD_TYPES,
                               accept_multiple_files=True, max_upload_size=200,
                               key=f"train_uploader_{box.round}", disabled=running)
    with st.spinner("Checking your pictures…"):
        box.add(uploads)
    upload_report(box.report)
    if box.count:
        st.button("Remove all my pictures", on_click=box.clear, disabled=running)

examples, count, why_not = dataset_overview(form.dataset, form.data_folder)
if why_not:
    st.warning(why_not)
if count:
    g1, g2 = st.columns([2, 3])
    g1.image(big(grid_image(examples, nrow=8), 520), width="stretch",
             caption=f"Some of the {count:,} pictures it will learn from")
    g2.markdown(f"**{count:,} pictures:** {describe_dataset(form.dataset, count)}.")
    g2.caption(
        "During training the model sees these pictures (random crops of them, for photos) "
        "with a random amount of noise added, and is scored on how well it guesses the clean "
        "picture. It never sees the same noisy version twice."
    )
elif form.dataset == "own":
    st.info("No pictures yet: upload some above. A few dozen varied photos are a good start.")
conditional_option(form, running, KEEP)

# ---------------------------------------------------------------- 2. preset
st.header("2 · How long should it practise?")
keys = [p.key for p in presets_for(form.dataset)]
st.radio("Preset", keys, key="train_preset", persist_state=KEEP, disabled=running,
         **as_default("train_preset", keys, "index"), format_func=lambda k: PRESETS[k].label)
st.caption(PRESETS[form.preset].blurb)
if PRESETS[form.preset].gpu and not HAS_GPU:
    st.warning("This preset is meant for a GPU and there is none here: on this computer's CPU "
               "it would take hours. Choose the shorter preset, or fewer steps below.")

with st.expander("Advanced settings"):
    a1, a2, a3 = st.columns(3)
    a1.number_input("Training steps", *LIMITS["steps"], key="train_steps", step=100,
                    **limits("steps"), persist_state=KEEP, disabled=running,
                    help="How many practice rounds. Each round is one batch of pictures.")
    a2.number_input("Batch size", *LIMITS["batch"], key="train_batch", step=8,
                    **limits("batch"), persist_state=KEEP, disabled=running,
                    help="Pictures per practice round: bigger is steadier but slower.")
    a3.number_input("Learning rate", *LIMITS["lr"], key="train_lr", step=1e-4,
                    **limits("lr"), format="%.5f", persist_state=KEEP, disabled=running,
                    help="How big each correction is. Too big and training goes wild.")
    b1, b2, b3 = st.columns(3)
    b1.selectbox("Model size", list(MODEL_SIZES), key="train_size", persist_state=KEEP,
                 **as_default("train_size", MODEL_SIZES, "index"),
                 format_func=MODEL_SIZE_LABELS.get, disabled=running)
    b2.selectbox("Learning-rate schedule", list(LR_SCHEDULES), key="train_schedule",
                 **as_default("train_schedule", LR_SCHEDULES, "index"),
                 persist_state=KEEP, format_func=LR_SCHEDULES.get, disabled=running)
    b3.number_input("New samples every … steps", *LIMITS["preview_every"],
                    key="train_preview_every", step=10, persist_state=KEEP, disabled=running,
                    **limits("preview_every"))
    if not draws_pictures(form.dataset):
        st.number_input("Crop size (pixels)", *LIMITS["patch"], key="train_patch", step=16,
                        **limits("patch"), persist_state=KEEP, disabled=running,
                        help="Photos are cut into square crops of this size for practice.")
st.caption(settings_line(form.settings))

# ---------------------------------------------------------------- 3. name and start
st.header("3 · Name it and start")
st.text_input("Name of your model", key="train_name", max_chars=60, persist_state=KEEP,
              **as_default("train_name"),
              disabled=running, help="Letters, digits, '-' and '_'; anything else becomes '-'.")
if form.name != ss.get("train_name"):
    st.caption(f"It will be saved as **{form.name}**.")
if form.problem and not running and form.builtin_name:
    st.warning(form.problem)
elif form.problem and not running:
    st.info(form.problem)
    st.checkbox(f"Start over: replace “{form.name}”", key="train_replace")

runs = runs_by_name()
c1, c2, c3, _ = st.columns([1, 1, 1, 3])
c1.button("▶ Start", type="primary", on_click=on_start,
          disabled=running or not form.can_start,
          key="train_start", width="stretch")
c2.button("■ Stop", on_click=stop_training, disabled=not running, key="train_stop",
          width="stretch")
if form.name in runs and not running:
    c3.button("▶ Resume" if not runs[form.name].finished else "▶ Train longer",
              on_click=on_resume, args=(form.name,), key="train_resume", width="stretch",
              help=resume_help(runs[form.name]))
if ss.get("train_message"):
    st.error(ss["train_message"])
others = [r for r in runs.values() if r.name != form.name]
if others and not running:
    with st.expander(f"Earlier runs on this server ({len(runs)})"):
        st.caption("Every run keeps a checkpoint: stopped ones continue where they left off.")
        for r in others[:20]:
            e1, e2 = st.columns([4, 1])
            e1.markdown(f"**{r.name}** · step {r.step:,} of {r.total:,}"
                        + (" · finished" if r.finished else " · stopped"))
            e2.button("▶ Resume" if not r.finished else "▶ Train longer", on_click=on_resume,
                      args=(r.name,), key=f"train_resume_{r.name}", help=resume_help(r))

# ---------------------------------------------------------------- live view and results
watch(current_job, training_panel, every=1.0, key="train", when_done=True)
job, running = job_state(current_job())
if running or job is None:
    st.stop()
snap = job.snapshot()
if snap["state"] == "failed":
    st.error(snap["error"] or "Training failed.")
    if snap["name"] in runs_by_name():
        st.caption("The last checkpoint is kept: Resume continues from it.")
    st.stop()
if snap["card"] is None:
    st.info("Stopped before the first training step: nothing was saved.")
    st.stop()
if snap["state"] == "stopped":
    st.success(f"Stopped at step {snap['step']:,} of {snap['total']:,}. The model "
               f"**{snap['name']}** is saved as it is now; pick it on the Restore page"
               f"{' (or the Create page)' if snap['card'].get('classes') else ''}, or "
               "press Resume to continue.")
else:
    st.success(f"{'Your model' if ss.get('train_my_job') == job.id else 'The model'} "
               f"**{snap['name']}** is saved; pick it on the Restore page"
               f"{' or ask it for a class on the Create page' if snap['card'].get('classes') else ''}.")
st.markdown(card_lines(snap["card"]))
st.caption(f"{snap['card'].get('parameters', 0):,} parameters · folder {snap['model_dir']}")
with st.expander("The model's card (everything recorded about it)"):
    st.json(snap["card"], expanded=False)
