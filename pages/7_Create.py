"""Create: pick a world, ask for something, turn the guidance knob, watch it appear out of
static (classifier-free guidance)."""

import streamlit as st

from diffusion_core.app.create import (
    BROWSER_LIMITS,
    DEFAULT_GUIDANCE,
    DEFAULT_SAMPLER,
    GUIDANCE_MAX,
    INTRO,
    OPENED_WORDS,
    SERVER_CHOSEN,
    STEPS_MAX,
    STEPS_MIN,
    SWEEP_WORDS,
    WHERE,
    CreateRequest,
    animation_gif,
    class_examples,
    create_models,
    final_grid_png,
    first_steps,
    guidance_words,
    live_grids,
    opened_up,
    pick_world,
    progress,
    sweep_strip,
    what_choices,
    what_text,
    where_text,
    world_text,
)
from diffusion_core.maths.samplers import SPECS
from diffusion_core.units import SEED_MAX
from ui.create_browser import browser_create
from ui.job_watch import progress_with_stop, watch
from ui.models import KEEP, device_defaults, estimate_caption, measured_speed, run_button
from ui.nav import sidebar_nav
from ui.session import session_alive_check
from ui.state import as_default, init_state

st.set_page_config(page_title="Create · Diffusion Lab", page_icon="✏️", layout="wide")
sidebar_nav()
init_state("create", {"create_what": "Sneaker", "create_guidance": DEFAULT_GUIDANCE,
                      "create_sampler": DEFAULT_SAMPLER, "create_seed": 0, "create_where": "browser"})
# a first visit starts with the steps that draw in about 10 s on this computer
device_defaults("create", create_models(), first_steps, ("create_steps",))
ss = st.session_state

st.title("Create: draw me a sneaker")
st.markdown(INTRO)
models = create_models()
if not models:
    st.error("No model that draws on request is installed. Train one on the Train page with "
             "“conditional” on, or put models/fashion in place (see the README).")
    st.stop()
ss["create_model"] = pick_world(models, ss.get("create_model")).name
names = [m.name for m in models]
st.radio("Which world?", names, key="create_model", horizontal=True, persist_state=KEEP,
         **as_default("create_model", names, "index"),
         format_func=lambda n: world_text(pick_world(models, n)))
info = pick_world(models, ss["create_model"])

# ---------------------------------------------------------------- settings (clamped here)
req = CreateRequest.clamped(info=info, what=ss.get("create_what"),
                            guidance=ss.get("create_guidance"), steps=ss.get("create_steps"),
                            sampler=ss.get("create_sampler"), seed=ss.get("create_seed"))
ss.update({f"create_{k}": v for k, v in req.widget_values().items()})
choices = what_choices(info)

# ---------------------------------------------------------------- in this browser, when it can
where = st.sidebar.radio("Where to draw", WHERE, key="create_where", persist_state=KEEP,
                         **as_default("create_where", WHERE, "index"), format_func=where_text,
                         help="This computer: your browser runs the model (the knob answers at "
                              "once). The server: it runs here, shared with everyone.")
note = st.empty()
browser = browser_create(info, req.widget_values(), BROWSER_LIMITS, on=where == "browser")
note.caption(browser.note if browser else SERVER_CHOSEN)
if browser is not None and browser.state == "ready":
    st.stop()  # the component above draws, shows and explains everything

examples, shown = class_examples(info, choices)
if examples:
    st.image(examples, caption=shown, width=84)
st.radio("What should it draw?", choices, key="create_what", horizontal=True,
         persist_state=KEEP, **as_default("create_what", choices, "index"), format_func=what_text)
st.slider("Guidance: how hard to push towards the label", 0.0, GUIDANCE_MAX, step=0.5,
          key="create_guidance", persist_state=KEEP, **as_default("create_guidance", lo=0.0),
          disabled=req.label < 0,
          help="0 ignores the label, 1 follows it plainly, higher pushes harder (less variety).")
st.caption(guidance_words(req.guidance) if req.label >= 0 else
           "Guidance needs a label: pick something to draw to use it.")
st.sidebar.slider("Steps", STEPS_MIN, STEPS_MAX, key="create_steps", persist_state=KEEP,
                  **as_default("create_steps", lo=STEPS_MIN, hi=STEPS_MAX),
                  help="More steps: a little finer pictures, slower.")
st.sidebar.selectbox("Sampler", list(SPECS), key="create_sampler", persist_state=KEEP,
                     **as_default("create_sampler", SPECS, "index"),
                     format_func=lambda s: SPECS[s].label)
st.sidebar.number_input("Seed (which noise it starts from)", 0, SEED_MAX, key="create_seed",
                        persist_state=KEEP, **as_default("create_seed", lo=0), step=1)

b1, b2 = st.columns([1, 5])
job = run_button(b1, "▶ Create", "create_job", "create_start_error", req.model,
                 req.run_device(), lambda den: req.start(den, alive=session_alive_check()),
                 key="create_run")
b2.caption(req.summary())
estimate_caption(b2, req.estimate(measured_speed(info, req.run_device())))


# ---------------------------------------------------------------- live view


def live_view(job, snap):
    progress_with_stop(job, *progress(snap), key="create")
    now, guess = live_grids(snap)
    v1, v2 = st.columns(2)
    if now is not None:
        v1.image(now, caption="the 16 pictures now (still noisy)", width="stretch")
        v2.image(guess, caption="the model's guess of how they will end",
                 width="stretch")


watch(lambda: ss.get("create_job"), live_view, every=0.3, key="create_job")
if job is None or not job.done:
    st.stop()
if job.state == "failed":
    st.error(job.error)
    st.stop()
res = job.result
if res is None:
    st.info("Stopped before the run started: nothing was drawn.")
    st.stop()

# ---------------------------------------------------------------- results
st.divider()
st.header("What it drew")
if res.stopped:
    st.warning("Stopped early: below is the model's latest guess.")
st.image(final_grid_png(res), caption=f"{job.settings['model']}: "
         f"{what_text(job.settings['what'])}, guidance {job.settings['guidance']:g}, "
         f"{len(res.frames)} steps, {res.seconds:.1f} s", width="stretch")

st.subheader("One picture, opened up")
o1, o2 = st.columns(2)
pick = o1.number_input("Which picture (1 = top left)", 1, 16, value=1, key="create_pick")
at = o2.slider("At step", 1, max(len(res.frames), 1), value=max(len(res.frames) // 3, 1),
               key="create_at") if len(res.frames) > 1 else 1
opened = opened_up(res, pick - 1, at - 1)
if opened is None:
    st.info("This run asked for anything: with no label there is only one guess to show. "
            "Pick something to draw and press Create to see the two guesses and their mix.")
else:
    p1, p2, p3 = st.columns(3)
    p1.image(opened["cond"], caption="guess when told the label")
    p2.image(opened["uncond"], caption="guess when told nothing")
    p3.image(opened["mix"], caption=f"guided mix (guidance {job.settings['guidance']:g})")
    st.markdown(OPENED_WORDS)

if strip := sweep_strip(res):
    st.subheader("The guidance knob, turned")
    st.image(strip, caption="same starting noise, one column per guidance strength")
    st.markdown(SWEEP_WORDS)

d1, d2 = st.columns(2)
d1.download_button("Grid (PNG)", final_grid_png(res), file_name="create_grid.png",
                   mime="image/png", key="create_dl_png")
d2.download_button("Animation (GIF)", animation_gif(res), file_name="create.gif",
                   mime="image/gif", key="create_dl_gif")
