"""Training of the noise-conditional denoiser D(x, sigma).

``train(cfg, out_dir, resume=..., callback=...)`` is a library function with a per-step
callback so the CLI, a Streamlit page and the tests can all drive it.

* AdamW, gradient clipping, EMA of the weights, optional autocast (bf16 on CUDA).
* Every batch, noise level and noise draw is a pure function of (seed, rank, step), so a
  resumed run reproduces an uninterrupted one exactly.
* Checkpoints (``checkpoint.pt``: plain tensors and numbers only, loadable with
  ``weights_only=True``) are written atomically every ``ckpt_every`` steps and at exit.
  The EMA weights are exported as ``model.safetensors`` with a ``card.json``.
* ``torchrun --nproc_per_node=N -m diffusion_core train ...`` uses DistributedDataParallel
  (nccl on GPUs, gloo on CPU).
* A class-conditional network (``net.num_classes > 0``, digits only) is trained with its
  labels dropped (replaced by "no label") with probability ``p_uncond``, so the one network
  learns both predictions that classifier-free guidance mixes.
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist

from diffusion_core.maths.precond import EDMDenoiser, edm_loss, sample_training_sigmas
from diffusion_core.maths.samplers import Guided, generate
from diffusion_core.models.nets import build_network, count_parameters
from diffusion_core.system.device import pick_device
from diffusion_core.training.data import PatchSampler, WholePictureSampler, build_sources
from diffusion_core.training.digits import DIGIT_CLASS_NAMES, DIGIT_WORDS, digits_dataset
from diffusion_core.training.worlds import (
    WORLD_SIZE,
    parse_data,
    world_batches,
    world_card,
    write_examples,
)
from diffusion_core.units import to_255


@dataclass
class TrainConfig:
    name: str = "natural"
    # "photo" (patches), "overview" (whole photos shrunk to ``patch`` px), "digits" or
    # "world" (28x28 labelled sets)
    kind: str = "photo"
    net: dict = field(default_factory=lambda: dict(in_channels=3, base=64, mults=[1, 2, 4],
                                                    blocks=[2, 2, 2], emb_dim=128))
    data: list = field(default_factory=lambda: ["train400@0.45", "bundled@0.3",
                                                 "deadleaves@0.25"])
    steps: int = 20000
    batch: int = 16
    patch: int = 96
    lr: float = 2e-4
    lr_warmup: int = 200
    lr_decay_start: int = 0  # 0 = constant lr after warm-up; else cosine decay from here
    weight_decay: float = 0.0
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    seed: int = 0
    p_focus: float = 0.6
    focus_lo: float = 0.02
    focus_hi: float = 1.0
    p_mean: float = -1.2
    p_std: float = 1.2
    p_gray: float = 0.15
    p_edge_chroma: float = 0.0  # share of colourized gray crops whose colour follows edges
    p_uncond: float = 0.15  # conditional networks: share of labels dropped ("no label")
    # conditional networks: the label embedding's learning rate is lr times this (a new
    # embedding beside pretrained weights learns slowly at their rate)
    label_lr_mult: float = 1.0
    amp: str = "auto"  # "auto" (bf16 on CUDA only), "bf16", "fp16", "off"
    ckpt_every: int = 200
    log_every: int = 20
    eval_every: int = 500
    sample_every: int = 1000
    threads: int = 0  # torch CPU threads; 0 = leave default
    # data-loading processes that build the next batches while the network trains (useful
    # when a GPU waits for the CPU); 0 = in the training process. The batches are the same.
    workers: int = 0
    device: str = "auto"

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"Unknown config keys: {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


@dataclass
class StepInfo:
    step: int
    total: int
    loss: float
    lr: float
    steps_per_s: float
    eta_s: float
    elapsed_s: float
    val_psnr: float | None = None
    sample: torch.Tensor | None = None  # optional preview images in [-1, 1]
    # The live EMA network (main rank only): a callback may run it (e.g. to draw its own
    # previews) but must not change it; it is only valid during the callback.
    ema: torch.nn.Module | None = None


def _step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    # A distinct, reproducible stream for every (seed, rank, step).
    return torch.Generator().manual_seed((seed * 1_000_003 + rank * 7919 + step) % (2**63))


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _lr_at(cfg: TrainConfig, step: int) -> float:
    lr = cfg.lr * min(1.0, (step + 1) / max(1, cfg.lr_warmup))
    if cfg.lr_decay_start and step >= cfg.lr_decay_start:
        frac = (step - cfg.lr_decay_start) / max(1, cfg.steps - cfg.lr_decay_start)
        lr *= 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))
        lr = max(lr, cfg.lr * 0.02)
    return lr


def num_classes(cfg: TrainConfig) -> int:
    """How many class labels the configured network takes (0 = unconditional)."""
    return int(cfg.net.get("num_classes", 0) or 0)


def make_batch_source(cfg: TrainConfig, log=print):
    """Returns (fn(n, generator) -> (x0, gray_flags[, labels]), description dict)."""
    if cfg.kind == "digits":
        images, labels = digits_dataset()
        labels = torch.as_tensor(labels, dtype=torch.long)

        def fn(n, g):
            idx = torch.randint(len(images), (n,), generator=g)
            return images[idx], torch.ones(n, dtype=torch.bool), labels[idx]

        return fn, {"sklearn digits (32x32)": int(len(images))}
    if cfg.kind == "world":
        return world_batches(cfg.data)
    if cfg.kind == "overview":
        sampler = WholePictureSampler(build_sources(cfg.data, seed=cfg.seed, log=log),
                                      cfg.patch, p_gray=cfg.p_gray)
        return sampler.batch, sampler.describe()
    sampler = PatchSampler(build_sources(cfg.data, seed=cfg.seed, log=log), cfg.patch,
                           p_gray=cfg.p_gray, p_edge_chroma=cfg.p_edge_chroma)
    if num_classes(cfg) and not sampler.labelled:
        raise ValueError("class-conditional training needs labelled data")
    return sampler.batch, sampler.describe()


def _step_batch(cfg: TrainConfig, batch_fn, rank: int, step: int):
    """Everything random in one training step: (x0, gray, sigma, noise, labels), drawn from
    the step's own generator, so it does not matter which process builds it. ``labels`` are
    all -1 ("no label") for an unconditional network, whose draws are as they always were;
    for a conditional one a share ``p_uncond`` of them is dropped to -1."""
    g = _step_generator(cfg.seed, rank, step)
    x0, gray, *rest = batch_fn(cfg.batch, g)
    sigma = sample_training_sigmas(cfg.batch, g, cfg.p_focus, (cfg.focus_lo, cfg.focus_hi),
                                   cfg.p_mean, cfg.p_std)
    noise = torch.randn(x0.shape, generator=g)
    noise = torch.where(gray[:, None, None, None], noise[:, :1].expand_as(noise), noise)
    labels = torch.full((cfg.batch,), -1, dtype=torch.long)
    if num_classes(cfg) and rest:
        drop = torch.rand(cfg.batch, generator=g) < cfg.p_uncond
        labels = torch.where(drop, labels, rest[0])
    return x0, gray, sigma, noise, labels


class _StepBatches(torch.utils.data.IterableDataset):
    """The batches of steps start, start+1, ... end-1; with k loader processes, process w
    builds steps start+w, start+w+k, ... and the loader hands them back in step order."""

    def __init__(self, cfg: TrainConfig, batch_fn, rank: int, start: int, end: int):
        super().__init__()
        self.cfg, self.batch_fn, self.rank, self.start, self.end = cfg, batch_fn, rank, start, end

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        w, k = (info.id, info.num_workers) if info is not None else (0, 1)
        for step in range(self.start + w, self.end, k):
            yield _step_batch(self.cfg, self.batch_fn, self.rank, step)


def _batches(cfg: TrainConfig, batch_fn, rank: int, start: int, pin: bool):
    """An iterator over the training batches from step ``start`` on."""
    ds = _StepBatches(cfg, batch_fn, rank, start, cfg.steps)
    if cfg.workers <= 0:
        return iter(ds)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=cfg.workers,
                                         pin_memory=pin, prefetch_factor=4)
    return iter(loader)


def _val_batch(cfg: TrainConfig, batch_fn) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(10_000_019 + cfg.seed)
    x0, gray, *_ = batch_fn(8, g)
    noise = torch.randn(x0.shape, generator=g)
    noise = torch.where(gray[:, None, None, None], noise[:, :1].expand_as(noise), noise)
    return x0, noise


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB for images in [-1, 1]."""
    mse = torch.mean(((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2.0) ** 2).item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def export_model(denoiser: EDMDenoiser, out_dir: Path, card: dict) -> Path:
    """Write ``model.safetensors`` and ``card.json`` (atomically) into out_dir."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    # float16 storage halves the file; weights are cast back to float32 on load.
    state = {k: v.detach().to(torch.float16 if v.is_floating_point() else v.dtype)
             .contiguous().cpu() for k, v in denoiser.net.state_dict().items()}
    tmp = out_dir / "model.safetensors.tmp"
    save_file(state, str(tmp), metadata={"config": json.dumps(denoiser.net.config)})
    os.replace(tmp, out_dir / "model.safetensors")
    import hashlib

    card = dict(card)
    card["sha256"] = hashlib.sha256((out_dir / "model.safetensors").read_bytes()).hexdigest()
    tmpc = out_dir / "card.json.tmp"
    tmpc.write_text(json.dumps(card, indent=2))
    os.replace(tmpc, out_dir / "card.json")
    if card.get("world"):  # the class pictures the Create page shows
        write_examples(card["world"], out_dir)
    return out_dir / "model.safetensors"


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    callback: Callable[[StepInfo], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    init_weights: str | Path | None = None,
    log: Callable[[str], None] = print,
    progress: bool = False,
) -> dict:
    """Train (or resume) a denoiser; returns a summary dict.

    ``init_weights`` starts from a safetensors file (e.g. the shipped model) instead of
    random weights. ``should_stop`` is polled every step; a stop writes a checkpoint."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank, world = 0, 1
    device = pick_device(cfg.device)
    if distributed:
        if device.type == "cuda":
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = torch.device("cuda", local)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    is_main = rank == 0

    torch.manual_seed(cfg.seed)  # only the initial weights depend on the global seed
    net = build_network(cfg.net).to(device)
    step = 0
    elapsed_before = 0.0
    if init_weights:
        from safetensors.torch import load_file

        # strict=False only for the label embedding a conditional network adds to
        # unconditional weights: it starts at zero, so the start predicts as they did
        missing, unexpected = net.load_state_dict(load_file(str(init_weights)), strict=False)
        if unexpected or any(not k.startswith("label_embed.") for k in missing):
            raise ValueError(f"{init_weights} does not fit this network (missing "
                             f"{missing[:3]}, unexpected {unexpected[:3]})")
        card_path = Path(init_weights).with_name("card.json")
        if card_path.exists():  # continue the step count and wall time of that model
            card = json.loads(card_path.read_text())
            overview = card.get("overview") or {}
            if Path(init_weights).name == overview.get("file"):  # a cascade's overview network
                card = overview
            step = int(card.get("steps", 0))
            elapsed_before = float(card.get("wall_time_s", 0.0))

    ema = copy.deepcopy(net).eval().requires_grad_(False)
    labels_p = [p for k, p in net.named_parameters() if k.startswith("label_embed.")]
    groups = [{"params": [p for k, p in net.named_parameters()
                          if not k.startswith("label_embed.")]}]
    if labels_p:
        groups.append({"params": labels_p, "lr_mult": cfg.label_lr_mult})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99),
                            weight_decay=cfg.weight_decay)
    ckpt_path = out / "checkpoint.pt"
    if resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=device, weights_only=True)
        net.load_state_dict(ck["net"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        step = int(ck["step"])
        elapsed_before = float(ck.get("elapsed_s", 0.0))
        if is_main:
            log(f"resumed from {ckpt_path} at step {step}")
    model = net
    if distributed:
        model = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)
    train_denoiser = EDMDenoiser(model)

    batch_fn, data_desc = make_batch_source(cfg, log=log)
    val_x0, val_noise = _val_batch(cfg, batch_fn)
    val_sigma = 2 * 25 / 255
    amp_dtype = None
    if cfg.amp == "bf16" or (cfg.amp == "auto" and device.type == "cuda"):
        amp_dtype = torch.bfloat16
    elif cfg.amp == "fp16":
        amp_dtype = torch.float16
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    log_path = out / "log.jsonl"
    if is_main:
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    pbar = None
    if progress and is_main:
        from tqdm import tqdm

        pbar = tqdm(total=cfg.steps, initial=step, dynamic_ncols=True)
    t_start = time.time()
    steps_done_here = 0
    loss_acc, loss_n = 0.0, 0
    last = {}

    def save_checkpoint():
        if not is_main:
            return
        _atomic_torch_save(
            {"net": net.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
             "step": step, "elapsed_s": elapsed_before + time.time() - t_start,
             "config": json.dumps(asdict(cfg))},
            ckpt_path,
        )

    stopped = False
    batches = _batches(cfg, batch_fn, rank, step, pin=device.type == "cuda")
    while step < cfg.steps:
        if should_stop is not None and should_stop():
            stopped = True
            break
        x0, gray, sigma, noise, labels = next(batches)
        x0, sigma, noise, labels = (t.to(device, non_blocking=True)
                                    for t in (x0, sigma, noise, labels))
        lr = _lr_at(cfg, step)
        for pg in opt.param_groups:
            pg["lr"] = lr * pg.get("lr_mult", 1.0)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32,
                            enabled=amp_dtype is not None):
            loss = edm_loss(train_denoiser, x0, sigma, noise,
                            labels if num_classes(cfg) else None)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        with torch.no_grad():
            d = min(cfg.ema_decay, (1 + step) / (10 + step))
            for pe, pn in zip(ema.parameters(), net.parameters()):
                pe.lerp_(pn.detach(), 1 - d)
        step += 1
        steps_done_here += 1
        lval = float(loss.detach())
        loss_acc += lval
        loss_n += 1
        el = time.time() - t_start
        sps = steps_done_here / max(el, 1e-9)
        info = StepInfo(step=step, total=cfg.steps, loss=lval, lr=lr, steps_per_s=sps,
                        eta_s=(cfg.steps - step) / max(sps, 1e-9),
                        elapsed_s=elapsed_before + el, ema=ema if is_main else None)
        if is_main and cfg.eval_every and (step % cfg.eval_every == 0 or step == cfg.steps):
            with torch.inference_mode():
                ed = EDMDenoiser(ema)
                y = val_x0.to(device) + val_sigma * val_noise.to(device)
                info.val_psnr = psnr(ed(y, val_sigma).cpu(), val_x0)
        if is_main and cfg.sample_every and (step % cfg.sample_every == 0):
            info.sample = preview_samples(EDMDenoiser(ema), cfg, device)
            _save_preview(info.sample, out / f"sample_{step:07d}.png")
        if is_main and (step % cfg.log_every == 0 or info.val_psnr is not None
                        or step == cfg.steps):
            rec = {"step": step, "loss": loss_acc / max(loss_n, 1), "lr": lr,
                   "steps_per_s": round(sps, 4), "elapsed_s": round(info.elapsed_s, 1)}
            if info.val_psnr is not None:
                rec["val_psnr_s25"] = round(info.val_psnr, 3)
            with open(log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
            loss_acc, loss_n = 0.0, 0
            last = rec
        if pbar is not None:
            pbar.update(1)
            pbar.set_postfix(loss=f"{lval:.4f}", sps=f"{sps:.2f}")
        if callback is not None and is_main:
            callback(info)
        if step % cfg.ckpt_every == 0:
            save_checkpoint()
    del batches  # stops the loader processes, if any
    save_checkpoint()
    dump = os.environ.get("DIFFUSION_LAB_DUMP_RANK_WEIGHTS")
    if dump:  # used by the DDP test: every rank writes its weights
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()},
                   f"{dump}{rank}.pt")
    if pbar is not None:
        pbar.close()
    total_elapsed = elapsed_before + time.time() - t_start
    summary = {"step": step, "stopped": stopped, "elapsed_s": total_elapsed, "last": last,
               "params": count_parameters(net), "data": data_desc}
    if is_main:
        card = {
            "name": cfg.name, "kind": cfg.kind, "architecture": "DenoiserUNet + EDM precond",
            "net": net.config, "parameters": count_parameters(net), "data": data_desc,
            "steps": step, "batch": cfg.batch * world, "patch": cfg.patch,
            "wall_time_s": round(total_elapsed, 1), "hardware": hardware_string(device, world),
            "final_loss": last.get("loss"), "val_psnr_s25": last.get("val_psnr_s25"),
            "config": asdict(cfg), **class_card(cfg),
        }
        export_model(EDMDenoiser(ema), out / "export", card)
    if distributed:
        dist.barrier()
    return summary


def hardware_string(device: torch.device, world: int = 1) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        name = f"CPU {name}, {torch.get_num_threads()} threads"
    return f"{world} x {name}" if world > 1 else name


def class_card(cfg: TrainConfig) -> dict:
    """The card entries of a conditional model: its class names (what ``--label`` and the
    Create page accept) and the label dropout; {} for an unconditional one."""
    k = num_classes(cfg)
    if not k:
        return {}
    card = {"conditional": True, "p_uncond": cfg.p_uncond}
    if cfg.kind == "world":
        return {**card, **world_card(parse_data(cfg.data)[0])}
    if cfg.kind == "digits":
        return {**card, "classes": list(DIGIT_CLASS_NAMES[:k]),
                "class_words": list(DIGIT_WORDS[:k])}
    return {**card, "classes": [str(i) for i in range(k)]}


def preview_samples(denoiser: EDMDenoiser, cfg: TrainConfig, device, n: int = 4) -> torch.Tensor:
    """A few images generated from pure noise with a short deterministic sampler (EMA
    weights), for progress previews; a conditional network draws classes 0, 1, ... with
    guidance 3."""
    side = WORLD_SIZE if cfg.kind == "world" else 32
    shape = (n, 1, side, side) if cfg.kind in ("digits", "world") else (n, 3, 64, 64)
    k = num_classes(cfg)
    den = Guided(denoiser, torch.arange(n) % k, 3.0) if k else denoiser
    return generate(den, shape, steps=12, sampler="heun", seed=1234, device=device)


def _save_preview(x: torch.Tensor, path: Path) -> None:
    from PIL import Image

    x = to_255(x).byte()
    row = torch.cat(list(x), dim=2)  # C, H, W*n
    arr = row.permute(1, 2, 0).numpy()
    if arr.shape[2] == 1:
        arr = arr[:, :, 0]
    Image.fromarray(arr).save(path)


def export_checkpoint(run_dir: Path, out_dir: Path, extra: dict | None = None) -> Path:
    """Export the EMA weights of a run's latest checkpoint as a model folder (weights and
    card), without touching the running job."""
    ck = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    cfg = TrainConfig.from_dict(json.loads(ck["config"]))
    net = build_network(cfg.net)
    net.load_state_dict(ck["ema"])
    last = {}
    log_path = run_dir / "log.jsonl"
    if log_path.exists():
        for line in log_path.read_text().splitlines():
            rec = json.loads(line)
            if rec["step"] <= ck["step"]:
                last = rec if "val_psnr_s25" in rec or not last else {**rec, **{
                    k: v for k, v in last.items() if k == "val_psnr_s25"}}
    data_desc = extra.pop("data", None) if extra else None
    if data_desc is None and cfg.kind == "world":  # how many pictures, and their credit
        data_desc = world_batches(cfg.data)[1]
    card = {
        "name": cfg.name, "kind": cfg.kind, "architecture": "DenoiserUNet + EDM precond",
        "net": net.config, "parameters": count_parameters(net),
        "data": data_desc or cfg.data, "steps": int(ck["step"]), "batch": cfg.batch,
        "patch": cfg.patch, "wall_time_s": round(float(ck.get("elapsed_s", 0.0)), 1),
        "final_loss": last.get("loss"), "val_psnr_s25": last.get("val_psnr_s25"),
        "config": asdict(cfg), **class_card(cfg),
    }
    card.update(extra or {})
    return export_model(EDMDenoiser(net), out_dir, card)
