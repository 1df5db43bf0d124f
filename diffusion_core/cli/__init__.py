"""Command line: ``python -m diffusion_core <command> ...``.

Commands: noise, restore, generate, denoise, inpaint, train, export, evaluate.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _save_png(t, path) -> None:
    from diffusion_core.media.images import to_pil

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    to_pil(t.clamp(-1, 1)).save(path)


# --------------------------------------------------------------------------- noise


def cmd_noise(a) -> int:
    from diffusion_core.maths.forward import draw_noise, strip_steps, x_at_step
    from diffusion_core.maths.schedules import make_schedule
    from diffusion_core.media.images import load_image
    from diffusion_core.media.viz import strip_image

    img = load_image(a.image, max_side=a.size).tensor
    sch = make_schedule(a.schedule, a.T)
    noise = draw_noise(img.shape, a.seed)
    step = min(max(a.t, 0), sch.T)
    _save_png(x_at_step(img, noise, sch, step), a.out)
    print(f"wrote {a.out} (step {step} of {sch.T}, {sch.name} schedule, seed {a.seed})")
    if a.strip:
        steps = strip_steps(sch.T, 8)
        strip_image([x_at_step(img, noise, sch, s) for s in steps],
                    [f"step {s}" for s in steps]).save(a.strip)
        print(f"wrote {a.strip}")
    return 0


# --------------------------------------------------------------------------- restore


def _frames_to_gif(result, path, noise_frames=None) -> None:
    import imageio.v3 as iio

    from diffusion_core.media.images import to_uint8

    seq = list(noise_frames or []) + [f.x_t for f in result.frames] + [result.final]
    arrs = []
    for x in seq:
        a = to_uint8(x.clamp(-1, 1))
        arrs.append(a if a.ndim == 3 else a[..., None].repeat(3, axis=2))
    iio.imwrite(path, arrs, duration=120, loop=0)


def cmd_restore(a) -> int:
    from diffusion_core.maths.schedules import make_schedule
    from diffusion_core.media.images import load_image
    from diffusion_core.models.registry import get_denoiser
    from diffusion_core.tasks.restore import as_numpy_metrics, pick_device, restore

    device = pick_device(a.device)
    den = get_denoiser(a.model, str(device))
    img = load_image(a.image, max_side=a.size).tensor
    if den.channels == 1 and img.shape[0] == 3:
        img = img.mean(0, keepdim=True)
    sch = make_schedule(a.schedule, a.T)
    res = restore(den, img, sch, step=a.t, steps=a.steps, sampler=a.sampler, seed=a.seed,
                  eta=a.eta, device=device)
    _save_png(res.final, a.out)
    fm = res.final_metrics
    print(f"wrote {a.out}: {res.steps_run} steps in {res.seconds:.2f}s on {device}; "
          f"PSNR noisy {fm.get('noisy_psnr', float('nan')):.2f} dB -> "
          f"restored {fm.get('psnr', float('nan')):.2f} dB "
          f"(one-step x0_hat {fm.get('one_step_x0_psnr', float('nan')):.2f} dB)")
    if a.gif:
        _frames_to_gif(res, a.gif)
        print(f"wrote {a.gif}")
    if a.mp4:
        from diffusion_core.media.export import write_restore_animation

        write_restore_animation(a.mp4, img, sch, a.t, res)
        print(f"wrote {a.mp4}")
    if a.json:
        Path(a.json).write_text(json.dumps(as_numpy_metrics(res), indent=1))
        print(f"wrote {a.json}")
    return 0


def cmd_generate(a) -> int:
    import torch

    from diffusion_core.maths.samplers import SAMPLERS, edm_sigmas
    from diffusion_core.media.viz import grid_image
    from diffusion_core.models.registry import get_denoiser
    from diffusion_core.tasks.restore import pick_device

    device = pick_device(a.device)
    den = get_denoiser(a.model, str(device))
    c = den.channels
    size = a.size or (32 if c == 1 else 64)
    g = torch.Generator().manual_seed(a.seed)
    sig = edm_sigmas(a.steps, 0.002, 80.0)
    x = (torch.randn(a.n, c, size, size, generator=g) * sig[0]).to(device)
    with torch.inference_mode():
        out = SAMPLERS[a.sampler](den, x, sig.to(device), generator=g).cpu()
    grid_image(out).save(a.out)
    print(f"wrote {a.out} ({a.n} samples, {a.steps} steps, {a.sampler})")
    return 0


# --------------------------------------------------------------------------- train/export


def cmd_train(a) -> int:
    from diffusion_core.training.train import TrainConfig, train

    cfg = TrainConfig.load(a.config)
    for k in ("steps", "batch", "patch", "lr", "ema_decay", "seed", "threads", "workers",
              "ckpt_every", "eval_every", "sample_every", "lr_decay_start", "data", "device",
              "amp", "p_edge_chroma"):
        v = getattr(a, k)
        if v is not None:
            setattr(cfg, k, v)
    out = Path(a.out or f"runs/{cfg.name}")
    summary = train(cfg, out, resume=a.resume, init_weights=a.init, progress=True)
    print(json.dumps(summary, default=str))
    return 0


def cmd_export(a) -> int:
    from diffusion_core.training.train import export_checkpoint

    path = export_checkpoint(Path(a.run), Path(a.out), extra=json.loads(a.extra or "{}"))
    print(f"wrote {path}")
    return 0


def cmd_evaluate(a) -> int:
    from diffusion_core.tasks.evaluate import evaluate_denoise, markdown_table, write_json

    if a.task == "digits":
        from diffusion_core.tasks.evaluate import evaluate_digits

        res = evaluate_digits(a.model or "digits", n=a.n, steps=a.steps, device=a.device)
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m diffusion_core",
                                description="Diffusion Lab command line")
    sub = p.add_subparsers(dest="cmd", required=True)

    n = sub.add_parser("noise", help="noise an image to step t (forward process)")
    n.add_argument("image")
    n.add_argument("--t", type=int, default=500, help="noise step 0..T (0 = clean)")
    n.add_argument("--schedule", default="linear", choices=["linear", "cosine", "sigmoid"])
    n.add_argument("--T", type=int, default=1000)
    n.add_argument("--seed", type=int, default=0)
    n.add_argument("--size", type=int, default=512, help="longest side")
    n.add_argument("--out", default="noisy.png")
    n.add_argument("--strip", default=None, help="also write a strip of 8 stages")

    r = sub.add_parser("restore", help="noise an image to step t and run the reverse process")
    r.add_argument("image")
    r.add_argument("--t", type=int, default=300)
    r.add_argument("--sampler", default="ddim", choices=["ddim", "ddpm", "heun", "dpmpp_2m"])
    r.add_argument("--steps", type=int, default=25)
    r.add_argument("--eta", type=float, default=0.0)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--model", default="natural")
    r.add_argument("--schedule", default="linear", choices=["linear", "cosine", "sigmoid"])
    r.add_argument("--T", type=int, default=1000)
    r.add_argument("--size", type=int, default=512)
    r.add_argument("--device", default="auto")
    r.add_argument("--out", default="restored.png")
    r.add_argument("--gif", default=None)
    r.add_argument("--mp4", default=None, help="MP4 of the picture being noised, then restored")
    r.add_argument("--json", default=None)

    g = sub.add_parser("generate", help="generate images from pure noise")
    g.add_argument("--model", default="digits")
    g.add_argument("--n", type=int, default=64)
    g.add_argument("--steps", type=int, default=50)
    g.add_argument("--sampler", default="heun", choices=["ddim", "ddpm", "heun", "dpmpp_2m"])
    g.add_argument("--size", type=int, default=None)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="auto")
    g.add_argument("--out", default="grid.png")

    t = sub.add_parser("train", help="train a denoiser from a config file")
    t.add_argument("--config", required=True)
    t.add_argument("--out", default=None, help="output directory (default runs/<name>)")
    t.add_argument("--resume", action="store_true")
    t.add_argument("--init", default=None, help="start from these safetensors weights")
    for name, typ in [("steps", int), ("batch", int), ("patch", int), ("lr", float),
                      ("ema_decay", float), ("seed", int), ("threads", int), ("workers", int),
                      ("ckpt_every", int), ("eval_every", int), ("sample_every", int),
                      ("lr_decay_start", int), ("p_edge_chroma", float)]:
        t.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None)
    t.add_argument("--data", nargs="+", default=None,
                   help="sources: deadleaves bundled train400 folder:PATH (name@weight)")
    t.add_argument("--device", default=None)
    t.add_argument("--amp", default=None, choices=["auto", "bf16", "fp16", "off"])

    e = sub.add_parser("export", help="export a run's EMA weights as a model folder")
    e.add_argument("--run", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--extra", default=None, help="JSON merged into the card")

    v = sub.add_parser("evaluate", help="benchmarks")
    v.add_argument("task", choices=["denoise", "digits"])
    v.add_argument("--model", default=None, help="default: natural (denoise), digits (digits)")
    v.add_argument("--data", default=None)
    v.add_argument("--n", type=int, default=1000, help="digits: number of samples")
    v.add_argument("--steps", type=int, default=50, help="digits: sampler steps")
    v.add_argument("--sigma", type=float, nargs="+", default=[25])
    v.add_argument("--baselines", default="bm3d")
    v.add_argument("--max-images", type=int, default=None)
    v.add_argument("--baseline-cache", default=None,
                   help="JSON file keeping BM3D/NLM scores between runs (same noisy images)")
    v.add_argument("--device", default="cpu")
    v.add_argument("--int8", action="store_true",
                   help="denoise: also run the model's 8-bit CPU path (diffusion_core.models.quant)")
    v.add_argument("--json", default=None)
    # inpaint/denoise have their own parsers in diffusion_core.tasks.repair (listed here for --help)
    sub.add_parser("inpaint", add_help=False, help="fill in damaged regions (inpaint --help)")
    sub.add_parser("denoise", add_help=False,
                   help="blind denoising of a noisy photo (denoise --help)")
    return p


HANDLERS = {"noise": cmd_noise, "restore": cmd_restore, "generate": cmd_generate,
            "train": cmd_train, "export": cmd_export, "evaluate": cmd_evaluate}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("inpaint", "denoise"):
        from diffusion_core.cli.repair import cli_denoise, cli_inpaint

        return (cli_inpaint if argv[0] == "inpaint" else cli_denoise)(argv[1:])
    a = build_parser().parse_args(argv)
    from diffusion_core.media.images import ImageLoadError
    from diffusion_core.models.registry import ModelLoadError

    try:
        return HANDLERS[a.cmd](a)
    except (ImageLoadError, ModelLoadError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
