"""Command line: ``python -m diffusion_core <command> ...``.

Commands: noise, restore, generate, denoise, inpaint, train, export, evaluate, export-web,
export-site (``python -m diffusion_core <command> --help`` explains every option).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import imageio.v3 as iio

from diffusion_core.cli.common import add_paths, run_guarded, save_png, step_progress
from diffusion_core.cli.repair import (
    DENOISE_DESCRIPTION,
    INPAINT_DESCRIPTION,
    add_denoise_args,
    add_inpaint_args,
    run_denoise,
    run_inpaint,
)
from diffusion_core.cli.web import (
    EXPORT_SITE_DESCRIPTION,
    EXPORT_WEB_DESCRIPTION,
    add_export_site_args,
    add_export_web_args,
    run_export_site,
    run_export_web,
)
from diffusion_core.maths.forward import draw_noise, strip_steps, x_at_step
from diffusion_core.maths.samplers import SPECS, Guided, generate
from diffusion_core.maths.schedules import SCHEDULE_ALIASES, SCHEDULES, make_schedule
from diffusion_core.media.convert import to_uint8
from diffusion_core.media.decode import load_image
from diffusion_core.media.export import run_summary, write_restore_animation
from diffusion_core.media.viz import grid_image, strip_image
from diffusion_core.models.labels import labelled_model, resolve_label, valid_labels
from diffusion_core.models.registry import find_model, get_denoiser
from diffusion_core.system.device import pick_device
from diffusion_core.tasks.evaluate import evaluate_denoise, markdown_table, write_json
from diffusion_core.tasks.restore import restore
from diffusion_core.training.digits_check import cond_markdown, evaluate_digits, evaluate_digits_cond
from diffusion_core.training.train import TrainConfig, export_checkpoint, train
from diffusion_core.training.worlds_check import WORLD_SAMPLER, evaluate_world, world_markdown

SCHEDULE_CHOICES = [*SCHEDULES, *SCHEDULE_ALIASES]
SAMPLER_HELP = ", ".join(f"{name} = {spec.label}" for name, spec in SPECS.items())

# --------------------------------------------------------------------------- noise


def cmd_noise(a) -> int:
    img = load_image(a.image, max_side=a.size).tensor
    sch = make_schedule(a.schedule, a.T)
    noise = draw_noise(img.shape, a.seed)
    step = min(max(a.t, 0), sch.T)
    save_png(x_at_step(img, noise, sch, step), a.out)
    print(f"wrote {a.out} (step {step} of {sch.T}, {sch.name} schedule, seed {a.seed})")
    if a.strip:
        steps = strip_steps(sch.T, 8)
        strip_image([x_at_step(img, noise, sch, s) for s in steps],
                    [f"step {s}" for s in steps]).save(a.strip)
        print(f"wrote {a.strip}")
    return 0


# --------------------------------------------------------------------------- restore/generate


def _frames_to_gif(result, path, noise_frames=None) -> None:
    seq = list(noise_frames or []) + [f.x_t for f in result.frames] + [result.final]
    arrs = []
    for x in seq:
        u = to_uint8(x.clamp(-1, 1))
        arrs.append(u if u.ndim == 3 else u[..., None].repeat(3, axis=2))
    iio.imwrite(path, arrs, duration=120, loop=0)


def cmd_restore(a) -> int:
    device = pick_device(a.device)
    den = get_denoiser(a.model, str(device))
    img = load_image(a.image, max_side=a.size).tensor
    if den.channels == 1 and img.shape[0] == 3:
        img = img.mean(0, keepdim=True)
    sch = make_schedule(a.schedule, a.T)
    res = restore(den, img, sch, step=a.t, steps=a.steps, sampler=a.sampler, seed=a.seed,
                  eta=a.eta, device=device, callback=step_progress("restore"))
    save_png(res.final, a.out)
    fm = res.final_metrics
    print(f"wrote {a.out}: {res.steps_run} steps in {res.seconds:.2f}s on {device}; "
          f"PSNR noisy {fm.get('noisy_psnr', float('nan')):.2f} dB -> "
          f"restored {fm.get('psnr', float('nan')):.2f} dB "
          f"(one-step x0_hat {fm.get('one_step_x0_psnr', float('nan')):.2f} dB)")
    if a.gif:
        _frames_to_gif(res, a.gif)
        print(f"wrote {a.gif}")
    if a.mp4:
        write_restore_animation(a.mp4, img, sch, a.t, res)
        print(f"wrote {a.mp4}")
    if a.json:
        Path(a.json).write_text(json.dumps(run_summary(res), indent=1))
        print(f"wrote {a.json}")
    return 0


def _write_samples(out, path: str) -> str:
    """One grid PNG, or one PNG per sample (000.png, ...) when ``path`` ends in a slash or is
    an existing folder; returns what was written, for the message."""
    folder = Path(path)
    if path.endswith(("/", "\\")) or folder.is_dir():
        for i, x in enumerate(out):
            save_png(x, folder / f"{i:03d}.png")
        return f"{len(out)} pictures in {folder}/ (000.png ... {len(out) - 1:03d}.png)"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    grid_image(out).save(path)
    return path


def cmd_generate(a) -> int:
    if a.n < 1 or a.steps < 1:
        raise ValueError("--n and --steps must be at least 1")
    card = find_model(a.model).card
    served = labelled_model(a.model, card, a.label)
    if served != a.model:
        print(f"model “{a.model}” is unconditional; its conditional sibling “{served}” draws "
              f"label {a.label}")
        a.model, card = served, find_model(served).card
    if a.list_labels:
        print("\n".join(valid_labels(card)) if card.get("classes") else
              f"model “{a.model}” is unconditional: it takes no label")
        return 0
    label = resolve_label(card, a.label)
    device = pick_device(a.device)
    den = get_denoiser(a.model, str(device))
    c = den.channels
    size = a.size or int(card.get("size") or (32 if c == 1 else 64))
    model = Guided(den, label, a.guidance) if label >= 0 else den
    out = generate(model, (a.n, c, size, size), a.steps, a.sampler, seed=a.seed, device=device,
                   eta=a.eta, callback=step_progress("generate"))
    what = _write_samples(out, a.out)
    asked = f", label {card['classes'][label]}, guidance {a.guidance:g}" if label >= 0 else ""
    print(f"wrote {what} ({a.n} samples, {a.steps} steps, {a.sampler}{asked})")
    return 0


# --------------------------------------------------------------------------- train/export/evaluate


def cmd_train(a) -> int:
    cfg = TrainConfig.load(a.config)
    for k, _, _ in TRAIN_OVERRIDES:
        v = getattr(a, k)
        if v is not None:
            setattr(cfg, k, v)
    for k in ("data", "device", "amp"):
        v = getattr(a, k)
        if v is not None:
            setattr(cfg, k, v)
    out = Path(a.out or f"runs/{cfg.name}")
    summary = train(cfg, out, resume=a.resume, init_weights=a.init, progress=True)
    print(json.dumps(summary, default=str))
    return 0


def cmd_export(a) -> int:
    path = export_checkpoint(Path(a.run), Path(a.out), extra=json.loads(a.extra or "{}"))
    print(f"wrote {path}")
    return 0


def cmd_evaluate(a) -> int:
    if a.task == "world":
        res = evaluate_world(a.model or "fashion", n_per_class=a.per_class, n_uncond=a.n or 200,
                             n_c2st=a.c2st, steps=a.steps, sampler=a.sampler or WORLD_SAMPLER,
                             device=a.device)
        print(world_markdown(res))
        if a.json:
            write_json(res, a.json)
            Path(a.json).with_suffix(".md").write_text(world_markdown(res))
            print(f"wrote {a.json} and its .md")
        return 0 if res["passes"] else 1
    if a.task == "digits" and find_model(a.model or "digits").card.get("classes"):
        res = evaluate_digits_cond(a.model, n_per_class=a.per_class, n_uncond=a.n or 1000,
                                   steps=a.steps, device=a.device)
        print(cond_markdown(res))
        if a.json:
            write_json(res, a.json)
            Path(a.json).with_suffix(".md").write_text(cond_markdown(res))
            print(f"wrote {a.json} and its .md")
        return 0 if res["summary"]["passes"] else 1
    if a.task == "digits":
        res = evaluate_digits(a.model or "digits", n=a.n or 1000, steps=a.steps,
                              device=a.device)
        print(json.dumps(res, indent=1))
        if a.json:
            write_json(res, a.json)
        return 0 if res["passes"] else 1
    if not a.data:
        print("--data DIR is needed for the denoise benchmark", file=sys.stderr)
        return 2
    res = evaluate_denoise(a.data, sigmas=a.sigma, model=a.model or "natural",
                           baselines=[b for b in a.baselines.split(",") if b],
                           max_images=a.max_images, device=a.device,
                           baseline_cache=a.baseline_cache, int8=a.int8)
    print(markdown_table(res))
    if a.json:
        write_json(res, a.json)
        print(f"wrote {a.json}")
    return 0


# --------------------------------------------------------------------------- the parser

#: options of ``train`` that override the config file: (name, type, help)
TRAIN_OVERRIDES = [
    ("steps", int, "training steps in all (a resumed run continues up to this number)"),
    ("batch", int, "pictures per step"),
    ("patch", int, "side of the square training crops, in pixels"),
    ("lr", float, "peak learning rate"),
    ("ema_decay", float, "decay of the weights' moving average that is exported (e.g. 0.999)"),
    ("seed", int, "seed of the data order and the noise"),
    ("threads", int, "torch CPU threads (0 = torch's default)"),
    ("workers", int, "processes that prepare batches beside the training (0 = none)"),
    ("ckpt_every", int, "write a checkpoint every this many steps"),
    ("eval_every", int, "measure validation PSNR every this many steps"),
    ("sample_every", int, "write preview samples every this many steps"),
    ("lr_decay_start", int, "step where the cosine decay of the learning rate starts "
                            "(0 = constant after warm-up)"),
    ("p_edge_chroma", float, "share of colourised gray crops whose colour follows edges"),
    ("p_mean", float, "mean of log(sigma) of the training noise levels (higher: more practice on "
                      "heavy noise, where a picture's class and layout are decided)"),
    ("p_std", float, "spread of log(sigma) of the training noise levels"),
]


def _add_device(p: argparse.ArgumentParser, default: str = "auto") -> None:
    p.add_argument("--device", default=default,
                   help=f"cpu, cuda, mps or auto (a GPU when there is one); default {default}")


def _add_schedule(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schedule", default="linear", choices=SCHEDULE_CHOICES,
                   help="noise schedule (default linear, Ho et al. 2020)")
    p.add_argument("--T", type=int, default=1000, help="number of noise steps (default 1000)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m diffusion_core",
                                description="Diffusion Lab command line")
    sub = p.add_subparsers(dest="cmd", required=True)

    n = sub.add_parser("noise", help="noise an image to step t (forward process)",
                       description="Noise a picture to step t of the forward process.")
    n.add_argument("image", help="the picture (PNG, JPEG, WebP, BMP, TIFF, GIF)")
    n.add_argument("--t", type=int, default=500, help="noise step 0..T (0 = clean; default 500)")
    _add_schedule(n)
    n.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    n.add_argument("--size", type=int, default=512,
                   help="shrink the picture so its longest side is at most this (default 512)")
    n.add_argument("--out", default="noisy.png", help="where to write the noisy picture (PNG)")
    n.add_argument("--strip", default=None, help="also write a strip of 8 stages here (PNG)")

    r = sub.add_parser("restore", help="noise an image to step t and run the reverse process",
                       description="Noise a picture to step t, then run the reverse process "
                                   "back to a clean picture and report PSNR.")
    r.add_argument("image", help="the picture (PNG, JPEG, WebP, BMP, TIFF, GIF)")
    r.add_argument("--t", type=int, default=300, help="noise step to start from, 0..T (default 300)")
    r.add_argument("--sampler", default="ddim", choices=list(SPECS),
                   help=f"how to step back: {SAMPLER_HELP} (default ddim)")
    r.add_argument("--steps", type=int, default=25, help="sampler steps (default 25)")
    r.add_argument("--eta", type=float, default=0.0,
                   help="DDIM's fresh noise per step (0 = deterministic; default); the other "
                        "samplers ignore it")
    r.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    r.add_argument("--model", default="natural", help="model name or folder (default natural)")
    _add_schedule(r)
    r.add_argument("--size", type=int, default=512,
                   help="shrink the picture so its longest side is at most this (default 512)")
    _add_device(r)
    add_paths(r, ("--out", "restored.png", "where to write the result (PNG)"),
              ("--gif", None, "also write the reverse process as a GIF here"),
              ("--mp4", None, "MP4 of the picture being noised, then restored"),
              ("--json", None, "also write the metrics and timings as JSON here"))

    g = sub.add_parser("generate", help="generate images from pure noise",
                       description="Generate pictures from pure noise (EDM noise levels) and "
                                   "write them as one grid, or one file each. A conditional "
                                   "model (e.g. digits_cond) draws the class asked with "
                                   "--label, steered by classifier-free guidance.")
    g.add_argument("--model", default="digits", help="model name or folder (default digits)")
    g.add_argument("--label", default=None,
                   help="conditional models: the class to draw, by a name on the model card "
                        "or an alias, any case (fashion: sneaker, ankle boot, t-shirt; doodles: "
                        "cat, fish; mnist: 7 or seven); default: anything (see --list-labels)")
    g.add_argument("--guidance", type=float, default=3.0,
                   help="guidance strength w with --label: 0 = ignore the label, 1 = the plain "
                        "conditional model, above 1 = follow the label more strictly, with "
                        "less variety (default 3)")
    g.add_argument("--list-labels", action="store_true",
                   help="print the labels the model accepts and stop")
    g.add_argument("--n", type=int, default=64, help="number of pictures (default 64)")
    g.add_argument("--steps", type=int, default=50, help="sampler steps (default 50)")
    g.add_argument("--sampler", default="heun", choices=list(SPECS),
                   help=f"{SAMPLER_HELP} (default heun)")
    g.add_argument("--eta", type=float, default=0.0,
                   help="DDIM's fresh noise per step (default 0); the other samplers ignore it")
    g.add_argument("--size", type=int, default=None,
                   help="side of each picture in pixels (default: the model's own size on its "
                        "card, e.g. 28 for mnist/fashion/doodles; else 32 gray, 64 colour)")
    g.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    _add_device(g)
    g.add_argument("--out", default="grid.png",
                   help="where to write the grid (PNG); a folder (ending in / or existing) gets "
                        "one PNG per sample: 000.png, 001.png, ...")

    i = sub.add_parser("inpaint", help="fill in damaged regions (RePaint), at full size",
                       description=INPAINT_DESCRIPTION)
    add_inpaint_args(i)
    d = sub.add_parser("denoise", help="blind denoising of a noisy photo, at full size",
                       description=DENOISE_DESCRIPTION)
    add_denoise_args(d)

    t = sub.add_parser("train", help="train a denoiser from a config file",
                       description="Train a denoiser; options given here override the config.")
    t.add_argument("--config", required=True, help="JSON config (see configs/)")
    t.add_argument("--out", default=None, help="output directory (default runs/<name>)")
    t.add_argument("--resume", action="store_true", help="continue from the run's checkpoint")
    t.add_argument("--init", default=None, help="start from these safetensors weights")
    for name, typ, text in TRAIN_OVERRIDES:
        t.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None,
                       help=text)
    t.add_argument("--data", nargs="+", default=None,
                   help="sources: deadleaves bundled train400 folder:PATH (name@weight)")
    t.add_argument("--device", default=None, help="cpu, cuda, mps or auto (default: the config's)")
    t.add_argument("--amp", default=None, choices=["auto", "bf16", "fp16", "off"],
                   help="mixed precision (auto = bf16 on CUDA only; default: the config's)")

    e = sub.add_parser("export", help="export a run's EMA weights as a model folder",
                       description="Export the EMA weights of a run's latest checkpoint as a "
                                   "model folder (weights and card).")
    add_paths(e, ("--run", None, "the run's directory"), ("--out", None, "the model folder to write"),
              required=True)
    e.add_argument("--extra", default=None, help="JSON merged into the card")

    v = sub.add_parser("evaluate", help="benchmarks",
                       description="denoise: the model against classical methods on a folder "
                                   "of pictures; digits: generated digits checked by a classifier; "
                                   "world: a conditional 28x28 model (mnist, fashion, doodles, "
                                   "digits_cond) judged by a CNN trained on the real train split "
                                   "(needs ../shared/data/gen).")
    v.add_argument("task", choices=["denoise", "digits", "world"], help="which benchmark")
    v.add_argument("--model", default=None,
                   help="default: natural (denoise), digits (digits), fashion (world)")
    v.add_argument("--data", default=None, help="denoise: folder of clean pictures")
    v.add_argument("--n", type=int, default=None,
                   help="digits: number of samples (default 1000; a conditional model: samples "
                        "with no label); world: unlabelled samples (default 200)")
    v.add_argument("--per-class", type=int, default=100,
                   help="digits (conditional) and world: samples per class and guidance "
                        "(default 100)")
    v.add_argument("--c2st", type=int, default=1000,
                   help="world: samples (and as many real test pictures) in the realism "
                        "two-sample test (default 1000)")
    v.add_argument("--steps", type=int, default=50, help="digits and world: sampler steps")
    v.add_argument("--sampler", default=None, choices=list(SPECS),
                   help=f"world: the sampler (default {WORLD_SAMPLER}, the Create page's)")
    v.add_argument("--sigma", type=float, nargs="+", default=[25],
                   help="denoise: noise levels on the 0-255 scale (default 25)")
    v.add_argument("--baselines", default="bm3d",
                   help="denoise: classical methods, comma-separated: bm3d, nlm (default bm3d)")
    v.add_argument("--max-images", type=int, default=None,
                   help="denoise: use only the first this many pictures")
    v.add_argument("--baseline-cache", default=None,
                   help="JSON file keeping BM3D/NLM scores between runs (same noisy images)")
    _add_device(v, "cpu")
    v.add_argument("--int8", action="store_true",
                   help="denoise: also run the model's 8-bit CPU path (diffusion_core.models.quant)")
    v.add_argument("--json", default=None, help="also write the results as JSON here")

    add_export_web_args(sub.add_parser(
        "export-web", help="export a conditional model for the browser (ONNX + JSON)",
        description=EXPORT_WEB_DESCRIPTION))
    add_export_site_args(sub.add_parser(
        "export-site", help="write a static site to hand out (Create and the scrubber)",
        description=EXPORT_SITE_DESCRIPTION))
    return p


HANDLERS = {"noise": cmd_noise, "restore": cmd_restore, "generate": cmd_generate,
            "inpaint": run_inpaint, "denoise": run_denoise, "train": cmd_train,
            "export": cmd_export, "evaluate": cmd_evaluate, "export-web": run_export_web,
            "export-site": run_export_site}


def main(argv=None) -> int:
    a = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    return run_guarded(lambda: HANDLERS[a.cmd](a))
