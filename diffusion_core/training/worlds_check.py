"""The benchmark of a conditional model of a 28x28 world (issue 26): does it draw what it is
asked for, every class, varied, real-looking, and not copied?

* A small CNN (:class:`SmallCNN`) trained on the world's train split is the judge; its
  accuracy on the real test split is reported per class.
* Per class, the share of ``n_per_class`` samples the judge puts in the asked class at each
  guidance w (w = 0 ignores the label: that row is the class histogram of ``n_uncond``
  unlabelled samples).
* Within-class diversity: the samples' mean pairwise distance over the real test images'.
* Realism: a classifier two-sample test (Lopez-Paz & Oquab 2017): the 5-fold
  cross-validated accuracy of a fresh small CNN telling ``n_c2st`` samples from as many real
  test images with the same labels (0.5 = indistinguishable). The same test on real test
  images blurred by a 0.7-pixel Gaussian is reported beside it, for scale.
* Near-copies: the share of samples closer (L2) to a training image than the 5th percentile
  of the real test images' nearest-training-image distances (a model drawing fresh images
  from the real distribution scores about 5 %).
* Seconds per 16 samples (guided, ``steps`` steps).

A model drawing at another size (the 32x32 ``digits_cond``) is judged on its samples shrunk
to 28x28. Everything random is seeded from ``seed``.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from diffusion_core.maths.samplers import Guided, generate
from diffusion_core.models.registry import find_model, load_denoiser
from diffusion_core.system.paths import REPO_ROOT
from diffusion_core.training.worlds import WORLD_SIZE, WORLDS, load_split, to_tensor

#: the acceptance figures of issue 26
ACCEPTANCE = {"asked_vs_classifier": 0.95, "class_margin": 0.10, "uncond_share": 0.05,
              "c2st": 0.85, "near_copies": 0.05, "seconds_per_16": 2.0}
#: the sampler the checks draw with: the Create page's default (DPM-Solver++ 2M: one model
#: call per step)
WORLD_SAMPLER = "dpmpp_2m"
CLASSIFIER_CACHE = REPO_ROOT / "runs" / "classifiers"


class SmallCNN(nn.Module):
    """Two 5x5 convolutions with max-pooling and a linear layer: about 99 % on MNIST."""

    def __init__(self, k: int):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 5, padding=2)
        self.c2 = nn.Conv2d(16, 32, 5, padding=2)
        self.fc = nn.Linear(32 * 7 * 7, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        return self.fc(x.flatten(1))


def fit_cnn(x: torch.Tensor, y: torch.Tensor, k: int, epochs: int, seed: int,
            batch: int = 128, lr: float = 2e-3) -> SmallCNN:
    """A fresh :class:`SmallCNN` fitted to (x, y) with Adam; seeded, deterministic."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = SmallCNN(k)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


@torch.inference_mode()
def predict(net: nn.Module, x: torch.Tensor, batch: int = 1000) -> np.ndarray:
    return torch.cat([net(x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)]).numpy()


def world_classifier(world: str, epochs: int = 3, seed: int = 0) -> tuple[SmallCNN, dict]:
    """The judge of a world: a :class:`SmallCNN` trained on the full train split (cached
    under runs/classifiers/), and its accuracy on the real test split, overall and per
    class."""
    k = len(WORLDS[world].classes)
    path = CLASSIFIER_CACHE / f"{world}_e{epochs}_s{seed}.pt"
    xte, yte = load_split(world, "test")
    if path.exists():
        net = SmallCNN(k)
        net.load_state_dict(torch.load(path, weights_only=True))
        net.eval()
    else:
        xtr, ytr = load_split(world, "train")
        net = fit_cnn(to_tensor(xtr), torch.as_tensor(ytr), k, epochs, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), path)
    pred = predict(net, to_tensor(xte))
    per_class = [float((pred[yte == c] == c).mean()) for c in range(k)]
    return net, {"accuracy": float((pred == yte).mean()), "per_class": per_class}


def c2st(a: torch.Tensor, b: torch.Tensor, seed: int = 0, folds: int = 5,
         epochs: int = 15) -> float:
    """Classifier two-sample test: the cross-validated accuracy of a fresh
    :class:`SmallCNN` telling ``a`` from ``b`` (equal sizes; 0.5 = indistinguishable)."""
    x = torch.cat([a, b]).float()
    y = torch.cat([torch.zeros(len(a)), torch.ones(len(b))]).long()
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    correct = 0
    for f in range(folds):
        test = perm[f::folds]
        train = torch.cat([perm[j::folds] for j in range(folds) if j != f])
        net = fit_cnn(x[train], y[train], 2, epochs, seed + 1 + f, batch=64)
        correct += int((predict(net, x[test]) == y[test].numpy()).sum())
    return correct / len(x)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N, 1, H, W) blurred by a Gaussian of ``sigma`` pixels (reflect padding)."""
    r = max(1, int(np.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-t**2 / (2 * sigma**2))
    k = k / k.sum()
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1))
    return F.conv2d(x, k.view(1, 1, -1, 1))


def _nearest(a: torch.Tensor, b: torch.Tensor, chunk: int = 500) -> torch.Tensor:
    """For each row of ``a``, the L2 distance to its nearest row of ``b``."""
    a, b = a.flatten(1).float(), b.flatten(1).float()
    return torch.cat([torch.cdist(a[i:i + chunk], b).min(1).values
                      for i in range(0, len(a), chunk)])


def _mean_pairwise(x: torch.Tensor) -> float:
    d = torch.cdist(x.flatten(1).float(), x.flatten(1).float())
    n = len(x)
    return float(d.sum() / (n * (n - 1)))


def _to_world(x: torch.Tensor) -> torch.Tensor:
    """Samples as the judge sees them: 28x28, in [-1, 1]."""
    x = x.clamp(-1, 1).float()
    if x.shape[-1] != WORLD_SIZE:
        x = F.interpolate(x, size=(WORLD_SIZE, WORLD_SIZE), mode="area")
    return x


def seconds_per_16(den, size: int, steps: int, sampler: str, device: str, reps: int = 3
                   ) -> float:
    """Median seconds to draw 16 samples with guidance 3 (after one warm-up)."""
    times = []
    for r in range(reps + 1):
        t0 = time.perf_counter()
        generate(Guided(den, torch.arange(16) % den.num_classes, 3.0), (16, 1, size, size),
                 steps, sampler, seed=r, device=device)
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


def _draw(den, labels: torch.Tensor, w: float, size: int, steps: int, sampler: str,
          seed: int, device: str, batch: int = 250) -> torch.Tensor:
    out = []
    for i in range(0, len(labels), batch):
        lab = labels[i:i + batch]
        model = Guided(den, lab, w) if w > 0 else den
        g = torch.Generator().manual_seed(seed * 100_003 + i)
        out.append(generate(model, (len(lab), 1, size, size), steps, sampler, generator=g,
                            device=device))
    return _to_world(torch.cat(out))


def asked_shares(model: str, w: float = 3.0, n_per_class: int = 100, steps: int = 20,
                 sampler: str = WORLD_SAMPLER, seed: int = 0, device: str = "cpu") -> dict:
    """The quick check of a model (e.g. one the Train page made): per class, the share of
    ``n_per_class`` samples at guidance ``w`` that the world's judge puts in the asked class,
    beside the judge's own accuracy on real test pictures."""
    info = find_model(model)
    world = info.card.get("world") or "mnist"
    den = load_denoiser(info, device)
    judge, acc = world_classifier(world)
    labels = torch.arange(den.num_classes).repeat_interleave(n_per_class)
    x = _draw(den, labels, w, int(info.card.get("size", 32)), steps, sampler, seed + 1, device)
    pred = predict(judge, x)
    shares = [float((pred[labels.numpy() == c] == c).mean()) for c in range(den.num_classes)]
    return {"world": world, "w": w, "shares": [round(s, 4) for s in shares],
            "mean": round(float(np.mean(shares)), 4),
            "judge_accuracy": round(acc["accuracy"], 4)}


def evaluate_world(model: str, world: str | None = None, n_per_class: int = 100,
                   n_uncond: int = 200, n_c2st: int = 1000,
                   guidances: tuple[float, ...] = (0.0, 1.0, 3.0), steps: int = 20,
                   sampler: str = WORLD_SAMPLER, seed: int = 0, device: str = "cpu",
                   log=print) -> dict:
    """The whole benchmark of one conditional model (see the module docstring); the world
    defaults to the model card's ``world`` (``digits_cond``: mnist)."""
    info = find_model(model)
    world = world or info.card.get("world") or "mnist"
    size = int(info.card.get("size", 32))
    den = load_denoiser(info, device)
    k = den.num_classes
    if k != len(WORLDS[world].classes):
        raise ValueError(f"model “{model}” has {k} classes, the {world} world "
                         f"{len(WORLDS[world].classes)}")
    t0 = time.perf_counter()
    judge, acc = world_classifier(world)
    log(f"judge: {acc['accuracy']:.2%} on the real test split")
    xte_u8, yte = load_split(world, "test")
    xtr_u8, _ = load_split(world, "train")
    xte, xtr = to_tensor(xte_u8), to_tensor(xtr_u8)

    per_class = torch.arange(k).repeat_interleave(n_per_class)
    shares, by_w = {}, {}
    for w in guidances:
        if w == 0:
            x = _draw(den, torch.full((n_uncond,), -1), 0.0, size, steps, sampler, seed, device)
            hist = np.bincount(predict(judge, x), minlength=k) / n_uncond
            shares["0"] = [round(float(h), 4) for h in hist]
            continue
        x = _draw(den, per_class, w, size, steps, sampler, seed + 1, device)
        pred = predict(judge, x)
        by_w[w] = x
        shares[f"{w:g}"] = [round(float((pred[per_class.numpy() == c] == c).mean()), 4)
                            for c in range(k)]
        log(f"w = {w:g}: asked class {np.mean(shares[f'{w:g}']):.1%}")
    w_top = max(guidances)
    top = by_w[w_top]
    diversity = [round(_mean_pairwise(top[per_class == c])
                       / _mean_pairwise(xte[torch.as_tensor(yte) == c][:n_per_class]), 4)
                 for c in range(k)]

    # realism: samples with the labels of n_c2st random real test images
    pick = torch.randperm(len(xte), generator=torch.Generator().manual_seed(seed + 7))[:n_c2st]
    real, labels = xte[pick], torch.as_tensor(yte)[pick]
    fake = _draw(den, labels, w_top, size, steps, sampler, seed + 2, device)
    realism = c2st(fake, real, seed=seed)
    log(f"two-sample test at w = {w_top:g}: {realism:.3f}")
    half = n_c2st // 2  # blurred real against other real pictures: the scale
    rest = torch.randperm(len(xte), generator=torch.Generator().manual_seed(seed + 8))
    rest = rest[~torch.isin(rest, pick)][:half]
    blurred = c2st(gaussian_blur(real[:half], 0.7), xte[rest], seed=seed)

    # near-copies: closer to a training picture than the closest 5 % of real test images
    real_nn = _nearest(xte[:2000], xtr)
    p5 = float(torch.quantile(real_nn, 0.05))
    near = _nearest(fake, xtr)
    near_share = float((near < p5).double().mean())
    sec16 = seconds_per_16(den, size, steps, sampler, device)
    seconds = time.perf_counter() - t0

    acc_ratio = float(np.mean(shares[f"{w_top:g}"])) / acc["accuracy"]
    worst_margin = min(shares[f"{w_top:g}"][c] - acc["per_class"][c] for c in range(k))
    a = ACCEPTANCE
    checks = {
        "asked_vs_classifier": acc_ratio >= a["asked_vs_classifier"],
        "every_class_within_10_points": worst_margin >= -a["class_margin"],
        "uncond_every_class_5pct": min(shares["0"]) >= a["uncond_share"],
        "realism": realism <= a["c2st"],
        "near_copies": near_share <= a["near_copies"],
        "seconds_per_16": sec16 <= a["seconds_per_16"],
    }
    summary = {
        "judge_test_accuracy": round(acc["accuracy"], 4),
        f"asked_mean_w{w_top:g}": round(float(np.mean(shares[f"{w_top:g}"])), 4),
        "asked_vs_classifier": round(acc_ratio, 4), "worst_class_margin": round(worst_margin, 4),
        "min_uncond_share": round(float(min(shares["0"])), 4),
        "realism_c2st": round(realism, 4), "realism_blurred_real_0p7": round(blurred, 4),
        "near_copies": round(near_share, 4), "seconds_per_16": round(sec16, 3),
        "passes": all(checks.values()),
    }
    return {
        "model": model, "world": world, "classes": list(WORLDS[world].classes),
        "size": size, "steps": steps, "sampler": sampler, "seed": seed,
        "n_per_class": n_per_class, "n_uncond": n_uncond, "n_c2st": n_c2st,
        "classifier": {"kind": "SmallCNN (2 conv + linear), 3 epochs on the train split",
                       "test_accuracy": round(acc["accuracy"], 4),
                       "per_class": [round(v, 4) for v in acc["per_class"]]},
        "asked_share": shares,
        "asked_mean_w_top": round(float(np.mean(shares[f"{w_top:g}"])), 4),
        "asked_vs_classifier": round(acc_ratio, 4), "worst_class_margin": round(worst_margin, 4),
        "diversity_ratio": diversity, "realism_c2st": round(realism, 4),
        "realism_blurred_real_0p7": round(blurred, 4),
        "near_copies": {"p5_real_test_to_train": round(p5, 4), "share": round(near_share, 4)},
        "seconds_per_16": round(sec16, 3), "seconds": round(seconds, 1),
        "torch_threads": torch.get_num_threads(), "acceptance": a, "checks": checks,
        "passes": all(checks.values()), "summary": summary,
        "model_sha256": hashlib.sha256((info.path / "model.safetensors").read_bytes()
                                       ).hexdigest(),
        "date": time.strftime("%Y-%m-%d"),
    }


def world_markdown(res: dict) -> str:
    """One model's benchmark as a Markdown table (bench/results/world_<model>.md)."""
    names = res["classes"]
    acc = res["classifier"]
    w_top = max(res["asked_share"], key=float)
    lines = [f"# {res['model']}: drawing what is asked ({res['world']})", "",
             f"{res['sampler']}, {res['steps']} steps, {res['size']}x{res['size']} "
             f"(judged at 28x28), {res['n_per_class']} samples per class and w, "
             f"{res['n_uncond']} unlabelled; seed {res['seed']}; {res['torch_threads']} torch "
             f"thread(s); {res['date']}; weights sha256 {res['model_sha256'][:16]}….", "",
             f"Judge: {acc['kind']}; {acc['test_accuracy']:.1%} on the real test split.", "",
             "| | " + " | ".join(names) + " | mean |",
             "|---|" + "---:|" * (len(names) + 1),
             "| judge on real test | " + " | ".join(f"{v:.0%}" for v in acc["per_class"])
             + f" | {acc['test_accuracy']:.1%} |"]
    for w, row in res["asked_share"].items():
        what = "unlabelled: class histogram" if w == "0" else "asked class"
        lines.append(f"| w = {w} ({what}) | " + " | ".join(f"{v:.0%}" for v in row)
                     + f" | {np.mean(row):.1%} |")
    lines.append(f"| diversity at w = {w_top} (vs real) | "
                 + " | ".join(f"{v:.2f}" for v in res["diversity_ratio"])
                 + f" | {np.mean(res['diversity_ratio']):.2f} |")
    c = res["checks"]
    yes = {True: "met", False: "NOT met"}
    nc = res["near_copies"]
    lines += ["", "| figure | measured | goal | |", "|---|---:|---:|---|",
              f"| asked class at w = {w_top}, share of the judge's accuracy | "
              f"{res['asked_vs_classifier']:.1%} | >= 95 % | {yes[c['asked_vs_classifier']]} |",
              f"| worst class: asked share minus the judge's real-test accuracy | "
              f"{res['worst_class_margin'] * 100:+.1f} points | >= -10 | "
              f"{yes[c['every_class_within_10_points']]} |",
              f"| smallest class share of unlabelled samples (w = 0) | "
              f"{min(res['asked_share']['0']):.1%} | >= 5 % | "
              f"{yes[c['uncond_every_class_5pct']]} |",
              f"| realism: two-sample test accuracy, {res['n_c2st']} samples at w = {w_top} vs "
              f"real test | {res['realism_c2st']:.3f} | <= 0.85 | {yes[c['realism']]} |",
              f"| for scale: real test blurred by 0.7 px vs real test | "
              f"{res['realism_blurred_real_0p7']:.3f} | | |",
              f"| near-copies (closer to a training picture than {nc['p5_real_test_to_train']:.2f},"
              f" the 5th percentile of real test) | {nc['share']:.1%} | <= 5 % | "
              f"{yes[c['near_copies']]} |",
              f"| seconds per 16 samples (guidance 3, {res['steps']} steps) | "
              f"{res['seconds_per_16']:.2f} s | <= 2 s | {yes[c['seconds_per_16']]} |",
              "", f"All acceptance figures: {'met' if res['passes'] else 'NOT all met'}. "
              f"The whole check took {res['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"
