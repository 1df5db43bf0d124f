"""Repair: fill in damaged regions (inpainting) and clean up noisy photos and scans.

Layout and wording only: the requests and words live in ``diffusion_core.app.repair``, the
runs in ``diffusion_core.jobs.repair`` (background jobs this page starts and watches).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from diffusion_core.app.models import model_named
from diffusion_core.app.repair import (
    DENOISE_INTRO,
    INPAINT_INTRO,
    MASK_SOURCES,
    NOISE_SOURCES,
    REPAIR_SIZES,
    PaintedMask,
    damage,
    denoise_pictures,
    denoise_request,
    denoise_time,
    denoise_verdict,
    first_settings,
    inpaint_pictures,
    inpaint_problem,
    inpaint_request,
    inpaint_table,
    inpaint_time,
    manual_start,
    noisy_picture,
    read_noise,
    repair_models,
    seed_of,
    stopped_text,
    working_picture,
)
from diffusion_core.jobs.repair import DenoiseJob, InpaintJob
from diffusion_core.media.masks import PRESETS, mask_fraction
from diffusion_core.media.viz import to_display
from diffusion_core.system.device import device_label, pick_device
from diffusion_core.tasks.blind import DENOISE_MODES
from diffusion_core.tasks.pictures import damaged_view
from diffusion_core.units import SEED_MAX
from ui.models import device_defaults, measured_speed, model_select
from ui.nav import sidebar_nav
from ui.picker import image_picker, show_notes
from ui.repair_view import (
    denoise_live,
    inpaint_live,
    paint_damage,
    run_and_result,
    show_row,
)
from ui.session import session_alive_check
from ui.state import K_SEED, K_SOURCE, as_default, bind, init_state

st.set_page_config(page_title="Repair · Diffusion Lab", page_icon="🩹", layout="wide")
sidebar_nav()
init_state("repair")
ss = st.session_state
K_FILL_JOB, K_CLEAN_JOB = "repair_inpaint_job", "repair_denoise_job"
# a first visit starts at the size and steps that fill in damage in about 10 s on this computer
device_defaults("repair", repair_models(), first_settings, ("repair_size", "repair_inpaint_steps"))
painted: PaintedMask = ss.setdefault("repair_painted", PaintedMask())

# ---------------------------------------------------------------- sidebar
x_full, label, notes = image_picker()
st.sidebar.select_slider("Repair size (longest side, pixels)", REPAIR_SIZES, key="repair_size",
                 **as_default("repair_size", REPAIR_SIZES),
                 help="The diffusion model runs many times per repair, so the picture is shrunk "
                      "to this size first. Small is quick; large needs patience (or a GPU).")
st.sidebar.number_input("Seed (which random damage and noise)", 0, SEED_MAX, **bind(K_SEED, lo=0),
                step=1)
models = repair_models()
if models:
    model_select(st.sidebar, "repair_model", models, preferred="natural")
x, seed, device = working_picture(x_full, ss["repair_size"]), seed_of(ss[K_SEED]), pick_device("auto")
speed = measured_speed(model_named(models, ss.get("repair_model")), device)
C, H, W = x.shape

st.title("Repair: fill in damage, clean up noise")
st.markdown(
    "The same denoiser that turns noise back into a picture can also **repair** real "
    "pictures. It never saw your picture and was never trained to repair anything: it only "
    "knows how to remove a bit of noise. Used cleverly, that is enough to fill in holes and "
    "to clean up grainy photos and scans."
)
show_notes(notes)
st.caption(f"Working on **{label}** at {W}×{H} pixels ({'gray' if C == 1 else 'colour'}), "
           f"on {device_label(device)}.")
if not models:
    st.error("No model is installed: see models/README or train one on the Train page.")
tab_fill, tab_clean = st.tabs(["Fill in damage", "Clean up a noisy photo or scan"])

# ================================================================ tab 1: inpainting
with tab_fill:
    st.markdown(INPAINT_INTRO)
    source = st.radio("Damage", list(MASK_SOURCES), horizontal=True, key="repair_mask_source",
                      format_func=MASK_SOURCES.get)
    if source == "preset":
        st.selectbox("Kind of damage", list(PRESETS), key="repair_preset", format_func=PRESETS.get)
        st.caption("Change the seed in the sidebar for a different pattern.")
    elif source == "paint":
        paint_damage(x, painted)
    upload = st.file_uploader("Mask picture, same shape as the photo (white = damaged, black = "
                              "keep)", type=["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff"],
                              key="repair_mask_upload") if source == "upload" else None
    mask, mask_error = damage(source, x, seed, ss.get("repair_preset"), painted,
                              upload.getvalue() if upload is not None else None)
    if mask_error:
        st.error(f"Can't use this mask: {mask_error}")

    c1, c2, c3 = st.columns(3)
    c1.image(to_display(damaged_view(x, mask)), caption="The damaged picture", width="stretch")
    c2.image((mask.numpy() * 255).astype("uint8"), width="stretch",
             caption=f"The damage: {100 * mask_fraction(mask):.1f} % of the picture (white) is "
                     "filled in")
    with c3:
        st.number_input("Steps", 5, 500, step=5, key="repair_inpaint_steps",
                        **as_default("repair_inpaint_steps", lo=5, hi=500),
                        help="How many times noise is removed on the way from pure noise to the "
                             "picture. More is slower.")
        st.number_input("Rounds of harmonising", 1, 10, 1, key="repair_resample",
                        help="RePaint's 'resampling': every few steps, add some noise back and "
                             "redo those steps, so the filled-in part blends with the rest. Each "
                             "extra round costs as much as the whole repair again.")
        with st.expander("More settings"):
            st.number_input("Steps between harmonising", 1, 50, 10, key="repair_jump")
            st.slider("Randomness per step (eta)", 0.0, 1.0, 1.0, 0.1, key="repair_eta",
                      help="1: fresh noise each step (DDPM, as in RePaint); 0: deterministic "
                           "(DDIM).")
    # We know what was under the damage when we added it here (a preset), or when the picture
    # is a built-in sample; not when an upload is painted over (its damage may be real).
    request = inpaint_request(x, mask, source, ss, seed,
                              known=ss.get(K_SOURCE) == "sample" or source == "preset")
    problem = inpaint_problem(mask, mask_error)
    if problem == "empty":
        st.info("No damage is marked yet: choose or paint some first.")
    elif problem == "full":
        st.error("The damage covers (almost) the whole picture: there is nothing left for the "
                 "model to go on. Mark a smaller area.")
    out = run_and_result(f"Repair ({request.calls} model calls)", "repair_run_inpaint", K_FILL_JOB,
                         "repair_inpaint_result", inpaint_live,
                         lambda: InpaintJob(request, device, alive=session_alive_check()),
                         problem is not None or not models, request.key,
                         "press **Repair** to redo it with these.", inpaint_time(request, speed))
    if out:
        if stopped_text(out, "fill-in"):
            st.warning(stopped_text(out, "fill-in"))
        show_row(inpaint_pictures(out))
        st.dataframe(pd.DataFrame(inpaint_table(out)), hide_index=True, width="stretch")
        st.caption(
            "PSNR compares with the picture before the damage (higher is closer; above "
            "about 30 dB differences are hard to see). A smooth fill often scores well on "
            "PSNR because it guesses the average; a well-trained diffusion model invents "
            "texture instead, which looks more natural but is never exactly the original "
            "(the shipped photo model keeps the colours and light around a hole, but its "
            "fill-ins still score a little below the smooth fill on average). The undamaged "
            "pixels are kept exactly as they were by both methods."
            if out["known"] else
            "Your own upload: we don't know what was under the damage, so there is "
            "nothing to measure against. Judge by eye.")

# ================================================================ tab 2: blind denoising
with tab_clean:
    st.markdown(DENOISE_INTRO)
    kind = st.radio("Picture", list(NOISE_SOURCES), horizontal=True, key="repair_noise_source",
                    format_func=NOISE_SOURCES.get)
    if kind == "add":
        st.slider("Noise to add (0–255 scale)", 1, 100, 25, key="repair_noise_amount",
                  help="The standard deviation of the Gaussian noise, in the brightness units "
                       "of an 8-bit picture (0 black, 255 white).")
    elif ss.get(K_SOURCE) != "upload":
        st.info("Upload your noisy photo or scan in the sidebar (**Upload your own**); "
                "meanwhile the sample is used as it is.")
    if kind != "add":
        st.caption("Tip: shrinking a picture averages some of its noise away, and JPEG "
                   "compression smears it; both make noise look weaker than it was.")
    noisy, clean, amount = noisy_picture(x, kind, ss.get("repair_noise_amount"), seed)
    measured = read_noise(noisy)
    if st.checkbox("I know the noise level: set it myself", key="repair_manual_sigma"):
        st.number_input("Noise level (0–255 scale)", 0.5, 150.0,
                        manual_start(measured.estimated_255), step=0.5, key="repair_sigma_value")
    reading = read_noise(noisy, ss.get("repair_sigma_value") if ss.get("repair_manual_sigma")
                         else None)
    st.markdown(reading.summary(amount))
    m1, m2 = st.columns(2)
    m1.radio("How", list(DENOISE_MODES), key="repair_denoise_mode", format_func=DENOISE_MODES.get)
    m2.number_input("Steps (step by step only)", 1, 100, 10, key="repair_denoise_steps",
                    help="Sampler steps from the matching step back to a clean picture; capped "
                         "at that step.")
    if ss.get("repair_denoise_mode") == "one_shot" and device.type == "cpu":
        m1.checkbox(
            "Fast CPU mode (8-bit)", key="repair_int8",
            help="Runs the network with 8-bit integer arithmetic instead of 32-bit floats: "
                 "about 2 times faster on a CPU with 8-bit instructions (VNNI), and within "
                 "about 0.05 dB of the full-precision result on the benchmark photos. The "
                 "first run at a new noise level takes a second or two longer (it measures "
                 "the network's value ranges on a few built-in photos).")
    request = denoise_request(noisy, clean, reading, ss, seed, on_cpu=device.type == "cpu",
                              source=(kind, amount, seed))
    out = run_and_result("Clean it up", "repair_run_denoise", K_CLEAN_JOB, "repair_denoise_result",
                         denoise_live, lambda: DenoiseJob(request, device, alive=session_alive_check()),
                         not models, request.key, "press **Clean it up** to redo it.",
                         denoise_time(request, speed))
    if out:
        if out.get("note"):
            st.warning(out["note"])
        if stopped_text(out, "picture"):
            st.warning(stopped_text(out, "picture"))
        show_row(denoise_pictures(out))
        st.caption(denoise_verdict(out))
