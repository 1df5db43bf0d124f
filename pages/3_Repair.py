"""Repair: fill in damaged regions (inpainting) and clean up noisy photos and scans.

Layout and wording only: the repair itself lives in ``diffusion_core.tasks.repair`` and
``diffusion_core.media.masks``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # when this page is run on its own (tests, `streamlit run`)
    sys.path.insert(0, str(ROOT))

from diffusion_core.maths.forward import sigma_at_step  # noqa: E402
from diffusion_core.media.masks import (  # noqa: E402
    PRESETS,
    MaskError,
    load_mask,
    mask_fraction,
    paint_grid,
    preset_mask,
    selection_mask,
)
from diffusion_core.media.viz import to_display  # noqa: E402
from diffusion_core.models.registry import (  # noqa: E402
    ModelLoadError,
    get_denoiser,
    get_int8_denoiser,
    list_models,
)
from diffusion_core.tasks.repair import (  # noqa: E402
    DENOISE_MODES,
    add_noise,
    blind_denoise,
    damaged_view,
    default_schedule,
    denoise_nlm,
    estimate_noise_sigma,
    fit_size,
    inpaint,
    inpaint_biharmonic,
    masked_psnr,
    noise_words,
    sigma_from_255,
    sigma_to_255,
    step_for_noise,
)
from diffusion_core.tasks.restore import device_label, pick_device, psnr  # noqa: E402
from ui.nav import sidebar_nav  # noqa: E402
from ui.state import (  # noqa: E402
    K_SEED,
    K_SOURCE,
    as_default,
    bind,
    clamp_int,
    image_picker,
    init_state,
)

st.set_page_config(page_title="Repair · Diffusion Lab", page_icon="🩹", layout="wide")
sidebar_nav()
init_state("repair")
ss = st.session_state

REPAIR_SIZES = [64, 96, 128, 192, 256, 384, 512]
K_RSIZE, K_MODEL = "repair_size", "repair_model"
K_INPAINT, K_DENOISE = "repair_inpaint_result", "repair_denoise_result"
K_PAINTED, K_PAINT_ROUND = "repair_painted", "repair_paint_round"
HAS_CANVAS = importlib.util.find_spec("streamlit_drawable_canvas") is not None
SCHEDULE = default_schedule()
ss.setdefault(K_RSIZE, 128)
ss.setdefault(K_PAINT_ROUND, 0)

# ---------------------------------------------------------------- sidebar
x_full, label, notes = image_picker()
sb = st.sidebar
sb.select_slider("Repair size (longest side, pixels)", REPAIR_SIZES, key=K_RSIZE,
                 **as_default(K_RSIZE, REPAIR_SIZES),
                 help="The diffusion model runs many times per repair, so the picture is shrunk "
                      "to this size first. Small is quick; large needs patience (or a GPU).")
sb.number_input("Seed (which random damage and noise)", 0, 2**31 - 1, **bind(K_SEED, lo=0),
                step=1)
photo_models = [m for m in list_models() if m.kind == "photo"] or list_models()
model_names = [m.name for m in photo_models]
if model_names:
    if ss.get(K_MODEL) not in model_names:
        ss[K_MODEL] = "natural" if "natural" in model_names else model_names[0]
    sb.selectbox("Model", model_names, key=K_MODEL, **as_default(K_MODEL, model_names, "index"),
                 format_func=lambda n: next((m.label for m in photo_models if m.name == n), n))
size = clamp_int(ss[K_RSIZE], 32, 1024, 128)
seed = clamp_int(ss[K_SEED], 0, 2**31 - 1, 0)
device = pick_device("auto")
x = fit_size(x_full, size)
C, H, W = x.shape
digest = hashlib.sha1(x.numpy().tobytes()).hexdigest()[:16]

st.title("Repair: fill in damage, clean up noise")
st.markdown(
    "The same denoiser that turns noise back into a picture can also **repair** real "
    "pictures. It never saw your picture and was never trained to repair anything: it only "
    "knows how to remove a bit of noise. Used cleverly, that is enough to fill in holes and "
    "to clean up grainy photos and scans."
)
for n in notes:
    st.caption(f"ℹ️ {n}")
st.caption(f"Working on **{label}** at {W}×{H} pixels ({'gray' if C == 1 else 'colour'}), "
           f"on {device_label(device)}.")


def load_model():
    """The chosen model, or None after showing why not."""
    name = ss.get(K_MODEL)
    if not name:
        st.error("No model is installed: see models/README or train one on the Train page.")
        return None
    try:
        return get_denoiser(name, str(device))
    except ModelLoadError as e:
        st.error(str(e))
        return None


def show_row(items: list[tuple[np.ndarray, str]]) -> None:
    cols = st.columns(len(items))
    for col, (img, caption) in zip(cols, items):
        col.image(img, caption=caption, width="stretch")


def db(v: float) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    return "perfect" if v == float("inf") else f"{v:.1f} dB"


tab_fill, tab_clean = st.tabs(["Fill in damage", "Clean up a noisy photo or scan"])

# ================================================================ tab 1: inpainting
with tab_fill:
    st.markdown(
        "Mark the damaged part of the picture. The model then starts from pure noise and "
        "removes it step by step, but after every step the pixels we **know** are put back "
        "(with just as much noise as the rest at that step). Only the hole is left to the "
        "model, and it has to invent something that fits in with its surroundings. This is "
        "**RePaint** (Lugmayr et al. 2022)."
    )
    source_opts = ["preset", "paint", "upload"]
    source_words = {"preset": "Ready-made damage", "paint": "Paint the damage yourself",
                    "upload": "Upload a mask"}
    mask_source = st.radio("Damage", source_opts, horizontal=True, key="repair_mask_source",
                           format_func=source_words.get)
    mask = None
    mask_error = None
    if mask_source == "preset":
        preset = st.selectbox("Kind of damage", list(PRESETS), key="repair_preset",
                              format_func=PRESETS.get)
        mask = preset_mask(preset if preset in PRESETS else "blocks", H, W, seed=seed)
        st.caption("Change the seed in the sidebar for a different pattern.")
    elif mask_source == "paint":
        painted = ss.get(K_PAINTED)
        if not painted or painted.get("key") != (digest, H, W):
            painted = {"key": (digest, H, W), "mask": np.zeros((H, W), dtype=bool)}
            ss[K_PAINTED] = painted
        if HAS_CANVAS:  # optional package: a free-hand brush
            from PIL import Image
            from streamlit_drawable_canvas import st_canvas

            from diffusion_core.media.masks import mask_from_drawing

            brush = clamp_int(st.slider("Brush size", 2, 40, 12, key="repair_brush"), 2, 40, 12)
            scale = max(1, 480 // max(H, W))
            canvas = st_canvas(fill_color="rgba(255, 0, 0, 0.6)", stroke_width=brush,
                               stroke_color="rgba(255, 0, 0, 0.9)",
                               background_image=Image.fromarray(to_display(x)).convert("RGB")
                               .resize((W * scale, H * scale)),
                               height=H * scale, width=W * scale, drawing_mode="freedraw",
                               key=f"repair_canvas_{ss[K_PAINT_ROUND]}")
            if canvas is not None and canvas.image_data is not None:
                painted["mask"] = mask_from_drawing(canvas.image_data, size=(H, W)).numpy()
        else:
            st.markdown(
                "**Paint** by selecting on the picture: drag a **box** (the default tool), pick "
                "the **lasso** in the chart's toolbar for free shapes, or **click** for a small "
                "square. Every selection is added to the damage; *Clear* starts again.")
            xs, ys, brush = paint_grid(H, W, cells=48)
            shown = to_display(x)
            shown = np.repeat(shown[:, :, None], 3, axis=2) if shown.ndim == 2 else shown.copy()
            pm = painted["mask"]
            shown[pm] = (0.45 * shown[pm] + 0.55 * np.array([230, 30, 30])).astype(np.uint8)
            fig = go.Figure(go.Image(z=shown, hoverinfo="skip"))
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", hoverinfo="none",
                                     marker={"size": 8, "opacity": 0.01, "color": "#000"},
                                     showlegend=False))
            view_w = 560
            fig.update_layout(height=int(view_w * H / W) + 40, width=view_w, dragmode="select",
                              margin={"l": 0, "r": 0, "t": 30, "b": 0}, showlegend=False)
            fig.update_xaxes(visible=False, range=[-0.5, W - 0.5])
            fig.update_yaxes(visible=False, range=[H - 0.5, -0.5], scaleanchor="x")
            try:
                event = st.plotly_chart(fig, on_select="rerun", key=f"repair_paint_{ss[K_PAINT_ROUND]}",
                                        selection_mode=("points", "box", "lasso"),
                                        config={"displaylogo": False})
                sel = event.selection if event is not None else None
                new = selection_mask(H, W, dict(sel) if sel else None, brush=brush).numpy()
            except Exception:  # noqa: BLE001 - painting is a nicety; presets always work
                new = np.zeros((H, W), dtype=bool)
                st.caption("Painting is not available here; use a ready-made damage instead.")
            if (new & ~pm).any():  # something new was selected: add it and redraw
                painted["mask"] = pm | new
                st.rerun()
        if st.button("Clear the painted damage", key="repair_paint_clear"):
            painted["mask"] = np.zeros((H, W), dtype=bool)
            ss[K_PAINT_ROUND] += 1
            st.rerun()
        mask = torch.from_numpy(painted["mask"].copy())
    else:
        up = st.file_uploader("Mask picture, same shape as the photo (white = damaged, black = "
                              "keep)", type=["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff"],
                              key="repair_mask_upload")
        if up is not None:
            try:
                mask = load_mask(up.getvalue(), size=(H, W))
            except MaskError as e:
                mask_error = str(e)
                st.error(f"Can't use this mask: {mask_error}")
    if mask is None:
        mask = torch.zeros((H, W), dtype=torch.bool)
    # We know what was under the damage when we added it here (a preset), or when the picture
    # is a built-in sample; not when an upload is painted over (its damage may be real).
    known_original = ss.get(K_SOURCE) == "sample" or mask_source == "preset"
    frac = mask_fraction(mask)

    c1, c2, c3 = st.columns(3)
    c1.image(to_display(damaged_view(x, mask)), caption="The damaged picture", width="stretch")
    c2.image((mask.numpy() * 255).astype(np.uint8), caption=f"The damage: {100 * frac:.1f} % of "
             "the picture (white) is filled in", width="stretch")
    with c3:
        steps_in = st.number_input("Steps", 5, 500, 50, step=5, key="repair_inpaint_steps",
                                   help="How many times noise is removed on the way from pure "
                                        "noise to the picture. More is slower.")
        resample_in = st.number_input("Rounds of harmonising", 1, 10, 1, key="repair_resample",
                                      help="RePaint's 'resampling': every few steps, add some "
                                           "noise back and redo those steps, so the filled-in part "
                                           "blends with the rest. Each extra round costs as much "
                                           "as the whole repair again.")
        with st.expander("More settings"):
            jump_in = st.number_input("Steps between harmonising", 1, 50, 10,
                                      key="repair_jump")
            eta_in = st.slider("Randomness per step (eta)", 0.0, 1.0, 1.0, 0.1,
                               key="repair_eta",
                               help="1: fresh noise each step (DDPM, as in RePaint); "
                                    "0: deterministic (DDIM).")
    steps = clamp_int(steps_in, 5, 500, 50)
    resample = clamp_int(resample_in, 1, 10, 1)
    jump = clamp_int(jump_in, 1, 50, 10)
    eta = float(min(max(float(eta_in or 0.0), 0.0), 1.0))
    settings = (digest, H, W, mask_source, hashlib.sha1(mask.numpy().tobytes()).hexdigest()[:12],
                steps, resample, jump, eta, seed, ss.get(K_MODEL))

    problem = None
    if mask_error:
        problem = "mask"
    elif frac == 0:
        problem = "empty"
        st.info("No damage is marked yet: choose or paint some first.")
    elif frac >= 0.99:
        problem = "full"
        st.error("The damage covers (almost) the whole picture: there is nothing left for the "
                 "model to go on. Mark a smaller area.")
    calls = steps * resample
    run = st.button(f"Repair ({calls} model calls)", type="primary", key="repair_run_inpaint",
                    disabled=problem is not None)
    if run and problem is None:
        den = load_model()
        if den is not None:
            bar = st.progress(0.0, text="Starting from pure noise...")
            live = st.empty()

            def on_step(info: dict) -> None:
                i, n = info["i"], info["n"]
                bar.progress((i + 1) / n, text=f"Model call {i + 1} of {n} (noise level "
                                               f"{sigma_to_255(info['sigma']):.0f} on the 0–255 scale)")
                if i % max(n // 8, 1) == 0:
                    live.image(to_display(info["composite"]), caption="The model's current guess",
                               width=min(W * 2, 320))

            res = inpaint(den, x, mask, steps=steps, resample=resample, jump_length=jump,
                          eta=eta, seed=seed, device=device, callback=on_step)
            base = inpaint_biharmonic(x, mask)
            bar.empty()
            live.empty()
            ss[K_INPAINT] = {
                "settings": settings, "known": known_original,
                "damaged": to_display(damaged_view(x, mask)), "original": to_display(x),
                "diffusion": to_display(res.final), "biharmonic": to_display(base.final),
                "psnr": {"diffusion": masked_psnr(res.final, x, mask),
                         "biharmonic": masked_psnr(base.final, x, mask)},
                "psnr_all": {"diffusion": psnr(res.final, x), "biharmonic": psnr(base.final, x)},
                "seconds": {"diffusion": res.seconds, "biharmonic": base.seconds},
                "calls": res.calls, "frac": frac,
            }

    out = ss.get(K_INPAINT)
    if out:
        st.subheader("Result")
        if out["settings"] != settings:
            st.caption("⏳ Made with earlier settings: press **Repair** to redo it with these.")
        items = [(out["damaged"], "Damaged"),
                 (out["diffusion"], f"Diffusion (RePaint), {out['seconds']['diffusion']:.1f} s"),
                 (out["biharmonic"], f"Smooth fill (biharmonic), {out['seconds']['biharmonic']:.2f} s")]
        if out["known"]:
            items.append((out["original"], "Before the damage"))
        show_row(items)
        table = pd.DataFrame([
            {"Method": "Diffusion (RePaint)", "Model calls": out["calls"],
             "Seconds": round(out["seconds"]["diffusion"], 2),
             "PSNR in the damaged part": db(out["psnr"]["diffusion"]) if out["known"] else "–",
             "PSNR, whole picture": db(out["psnr_all"]["diffusion"]) if out["known"] else "–"},
            {"Method": "Smooth fill (biharmonic)", "Model calls": 0,
             "Seconds": round(out["seconds"]["biharmonic"], 2),
             "PSNR in the damaged part": db(out["psnr"]["biharmonic"]) if out["known"] else "–",
             "PSNR, whole picture": db(out["psnr_all"]["biharmonic"]) if out["known"] else "–"},
        ])
        st.dataframe(table, hide_index=True, width="stretch")
        if out["known"]:
            st.caption(
                "PSNR compares with the picture before the damage (higher is closer; above "
                "about 30 dB differences are hard to see). A smooth fill often scores well on "
                "PSNR because it guesses the average; a well-trained diffusion model invents "
                "texture instead, which looks more natural but is never exactly the original "
                "(the shipped model is still early in its training, so its fill-ins are rough "
                "for now). The undamaged pixels are kept exactly as they were by both methods.")
        else:
            st.caption("Your own upload: we don't know what was under the damage, so there is "
                       "nothing to measure against. Judge by eye.")

# ================================================================ tab 2: blind denoising
with tab_clean:
    st.markdown(
        "A grainy photo or a noisy scan is a picture plus noise: exactly what the model "
        "learned to clean up. We first **measure how noisy** the picture is (from the "
        "finest-scale detail, where real pictures are mostly smooth and noise is not), find the "
        "step of the forward process with that much noise, and let the model run the reverse "
        "process from there, starting from your noisy picture itself."
    )
    kind = st.radio("Picture", ["add", "noisy"], horizontal=True, key="repair_noise_source",
                    format_func=lambda k: ("Add known noise to the picture (to try it out)"
                                           if k == "add" else "My picture is already noisy"))
    clean = None
    if kind == "add":
        amount_in = st.slider("Noise to add (0–255 scale)", 1, 100, 25, key="repair_noise_amount",
                              help="The standard deviation of the Gaussian noise, in the "
                                   "brightness units of an 8-bit picture (0 black, 255 white).")
        amount = clamp_int(amount_in, 1, 100, 25)
        noisy = add_noise(x, amount, seed=seed)
        clean = x
    else:
        amount = None
        noisy = x
        if ss.get(K_SOURCE) != "upload":
            st.info("Upload your noisy photo or scan in the sidebar (**Upload your own**); "
                    "meanwhile the sample is used as it is.")
        st.caption("Tip: shrinking a picture averages some of its noise away, and JPEG "
                   "compression smears it; both make noise look weaker than it was.")
    est = estimate_noise_sigma(noisy)
    est_255 = sigma_to_255(est)
    manual = st.checkbox("I know the noise level: set it myself", key="repair_manual_sigma")
    if manual:
        given_in = st.number_input("Noise level (0–255 scale)", 0.5, 150.0,
                                   float(round(max(est_255, 0.5), 1)), step=0.5,
                                   key="repair_sigma_value")
        sigma = sigma_from_255(min(max(float(given_in or 0.5), 0.5), 150.0))
    else:
        sigma = est
    step = step_for_noise(SCHEDULE, sigma)
    added = f" (you added {amount})" if amount is not None else ""
    st.markdown(
        f"**Measured noise: about {est_255:.1f}** on the 0–255 scale{added}: "
        f"*{noise_words(est_255)}*.  \n"
        f"That much noise is **step {step} of {SCHEDULE.T}** on the Add-noise page "
        f"(σ = {sigma_at_step(SCHEDULE, step):.3f}); the model starts there."
        + ("" if not manual else f"  \nUsing your level: {sigma_to_255(sigma):.1f}.")
    )
    m1, m2 = st.columns(2)
    mode = m1.radio("How", list(DENOISE_MODES), key="repair_denoise_mode",
                    format_func=DENOISE_MODES.get)
    dsteps_in = m2.number_input("Steps (step by step only)", 1, 100, 10, key="repair_denoise_steps",
                                help="Sampler steps from the matching step back to a clean "
                                     "picture; capped at that step.")
    dsteps = clamp_int(dsteps_in, 1, 100, 10)
    mode = mode if mode in DENOISE_MODES else "iterative"
    fast = False
    if mode == "one_shot" and device.type == "cpu":
        fast = m1.checkbox(
            "Fast CPU mode (8-bit)", key="repair_int8",
            help="Runs the network with 8-bit integer arithmetic instead of 32-bit floats: "
                 "about 2 times faster on a CPU with 8-bit instructions (VNNI), and within "
                 "about 0.05 dB of the full-precision result on the benchmark photos. The "
                 "first run at a new noise level takes a second or two longer (it measures "
                 "the network's value ranges on a few built-in photos).")
    dsettings = (digest, kind, amount, seed, round(sigma, 6), mode, dsteps, ss.get(K_MODEL),
                 bool(fast))
    if st.button("Clean it up", type="primary", key="repair_run_denoise"):
        den = load_model()
        if den is not None and fast:
            try:
                with st.spinner("Preparing the 8-bit network for this noise level..."):
                    den8 = get_int8_denoiser(ss.get(K_MODEL))
                    den8.body(sigma)
                den = den8
            except Exception as e:  # noqa: BLE001 - fall back to full precision, say why
                st.warning(f"Fast mode is not available here ({e}); using full precision.")
                fast = False
        if den is not None:
            bar = st.progress(0.0, text="Removing noise...")

            def on_dstep(info: dict) -> None:
                bar.progress((info["i"] + 1) / max(info["n"], 1),
                             text=f"Step {info['i'] + 1} of {info['n']}")

            res = blind_denoise(den, noisy, sigma=sigma, mode=mode, steps=dsteps, seed=seed,
                                device=device, callback=on_dstep, clean=clean)
            base = denoise_nlm(noisy, res.sigma)
            bar.empty()
            ss[K_DENOISE] = {
                "settings": dsettings, "noisy": to_display(noisy),
                "diffusion": to_display(res.final), "nlm": to_display(base.final),
                "clean": to_display(clean) if clean is not None else None,
                "psnr": ({"noisy": psnr(noisy, clean), "diffusion": psnr(res.final, clean),
                          "nlm": psnr(base.final, clean)} if clean is not None else None),
                "seconds": {"diffusion": res.seconds, "nlm": base.seconds},
                "step": res.step, "sigma_255": res.sigma_255, "mode": res.mode,
                "steps_run": res.steps_run, "int8": bool(fast),
            }

    out = ss.get(K_DENOISE)
    if out:
        st.subheader("Result")
        if out["settings"] != dsettings:
            st.caption("⏳ Made with earlier settings: press **Clean it up** to redo it.")
        p = out["psnr"]
        how = "in one go" if out["mode"] == "one_shot" else f"{out['steps_run']} steps"
        if out.get("int8"):
            how += ", 8-bit"
        items = [(out["noisy"], "Noisy" + (f", {db(p['noisy'])}" if p else "")),
                 (out["diffusion"], f"Diffusion from step {out['step']} ({how}), "
                                    f"{out['seconds']['diffusion']:.1f} s"
                                    + (f", {db(p['diffusion'])}" if p else "")),
                 (out["nlm"], f"Non-local means, {out['seconds']['nlm']:.2f} s"
                              + (f", {db(p['nlm'])}" if p else ""))]
        if out["clean"] is not None:
            items.append((out["clean"], "The clean original"))
        show_row(items)
        if p:
            gain = p["diffusion"] - p["noisy"]
            st.caption(
                f"PSNR against the clean original (higher is closer). The diffusion model "
                f"{'gained' if gain >= 0 else 'lost'} {abs(gain):.1f} dB over the noisy "
                "picture. Non-local means is a classic method that averages similar-looking "
                "patches from all over the picture; it is given the same noise level.")
        else:
            st.caption("No clean original is known for an already-noisy picture, so judge by "
                       "eye: look at smooth areas (grain gone?) and edges (still sharp?).")
