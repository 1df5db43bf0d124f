"""The digits check: generate digits with a model and score them with a classifier trained on
the real digits (what a digits model must pass before it ships; ``evaluate digits``)."""

from __future__ import annotations

import time

import torch

from diffusion_core.maths.samplers import generate
from diffusion_core.models.registry import find_model, load_denoiser, sha256_file
from diffusion_core.training.digits import DIGITS_SIZE, DigitsClassifier


def _weights_sha256(name: str) -> str | None:
    """The sha256 of the model's weights, for the record (None if they cannot be read)."""
    try:
        return sha256_file(find_model(name).path / "model.safetensors")
    except Exception:  # noqa: BLE001 - a record, not a reason to fail the check
        return None


def evaluate_digits(model: str = "digits", n: int = 1000, steps: int = 50,
                    sampler: str = "heun", seed: int = 0, device: str = "cpu",
                    batch: int = 250) -> dict:
    """Generate n digits from pure noise and score them with a classifier trained on the
    real digits: mean confidence and the share of each class; ``passes`` when the mean
    confidence is at least 0.9 and every class gets at least 5 %."""
    den = load_denoiser(model, device)
    clf = DigitsClassifier()
    g = torch.Generator().manual_seed(seed)  # one stream through all the batches
    outs = []
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        shape = (min(batch, n - i), 1, DIGITS_SIZE, DIGITS_SIZE)
        outs.append(generate(den, shape, steps, sampler, generator=g, device=device))
    seconds = time.perf_counter() - t0
    res = clf.check(torch.cat(outs))
    res.update({"model": model, "steps": steps, "sampler": sampler, "seconds": round(seconds, 2),
                "classifier_test_accuracy": round(clf.test_accuracy, 4),
                "passes": bool(res["mean_confidence"] >= 0.9 and res["min_class_share"] >= 0.05),
                "model_sha256": _weights_sha256(model),
                "date": time.strftime("%Y-%m-%d")})
    return res
