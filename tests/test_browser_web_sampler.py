"""The browser's sampler against the Python sampler, in headless Chromium (WASM, one thread).

Given the same starting noise and the same injected noise (torch draws both here and the test
hands them to the Web Worker), the pictures that web/app/worker.js draws with the exported
ONNX file and web/app/sampler.js agree with maths.samplers.generate and the torch model:
max |difference| <= 1e-3 on the final pictures, for each sampler the browser offers, told a
label with guidance and told nothing. The seeded noise itself differs (the browser has its
own generator); the page's help says so."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from bench.web import APP_DIR, static_server, worker_runs
from diffusion_core.browser.create import runtime_problem
from diffusion_core.browser.export import read_export
from diffusion_core.maths.samplers import Guided, edm_sigmas, generate
from diffusion_core.models.registry import find_model, load_denoiser, sha256_file

pytestmark = pytest.mark.browser

MODEL = "mnist"
TOLERANCE = 1e-3
#: (sampler, label, guidance, eta, pictures, steps): guided with a label (both guesses in one
#: batch-2 call), "anything" (two pictures share a call; an odd count leaves one alone), and
#: the samplers that inject fresh noise (DDPM, DDIM with eta = 1)
CASES = [
    ("heun", 3, 3.0, 0.0, 4, 8),
    ("ddim", 7, 2.0, 1.0, 3, 8),
    ("ddpm", -1, 1.0, 0.0, 3, 8),
    ("dpmpp_2m", 5, 1.0, 0.0, 2, 8),
]


@pytest.fixture(scope="module")
def web_url():
    if runtime_problem():
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed, so neither is onnxruntime-web (make test installs "
                        "both when root)")
        pytest.fail(runtime_problem() + ": run `make test` (it runs npm ci in web/)")
    with static_server(APP_DIR) as url:
        yield url


def _injected(shape, seed: int, steps: int):
    """What generate() draws from its generator, in order: the starting noise, then one
    picture-batch of fresh noise per step that adds some (every step but the last)."""
    g = torch.Generator().manual_seed(seed)
    start = torch.randn(shape, generator=g)
    noise = [torch.randn(shape, generator=g) for _ in range(steps - 1)]
    return start, noise


def test_js_and_python_samplers_agree(browser, web_url):
    info = find_model(MODEL)
    data = read_export(MODEL)
    assert data is not None, "python -m diffusion_core export-web --model mnist"
    assert data["weights_sha256"] == sha256_file(info.path / "model.safetensors"), \
        "the browser copy is older than the weights: python -m diffusion_core export-web --model mnist"
    den = load_denoiser(info, "cpu")
    side = data["size"]
    runs, refs = [], []
    for i, (sampler, label, w, eta, n, steps) in enumerate(CASES):
        shape = (n, 1, side, side)
        seed = 100 + i
        model = Guided(den, label, w, both=True) if label >= 0 else den
        refs.append(generate(model, shape, steps, sampler, seed=seed, eta=eta).numpy())
        start, noise = _injected(shape, seed, steps)
        runs.append({"label": label, "guidance": w, "steps": steps, "sampler": sampler,
                     "seed": 0, "n": n, "eta": eta, "start": start.reshape(-1).tolist(),
                     "noise": [z.reshape(-1).tolist() for z in noise]})
    page = browser.new_page()
    try:
        out = worker_runs(page, web_url, MODEL, runs)
        # the noise levels: the browser computes edm_sigmas' float32 values exactly
        js_sigmas = page.evaluate("""async (ns) => {
            const m = await import('./sampler.js');
            return ns.map((n) => m.edmSigmas(n, 0.002, 80, 7));
        }""", [1, 5, 8, 20, 37, 100])
    finally:
        page.close()
    for n, got in zip([1, 5, 8, 20, 37, 100], js_sigmas):
        assert got == edm_sigmas(n).tolist(), f"noise levels differ for {n} steps"
    assert out["ready"]["ort"], "onnxruntime-web reported its version"
    for (sampler, label, w, eta, n, steps), ref, run in zip(CASES, refs, out["runs"]):
        got = np.asarray(run["final"], np.float32).reshape(ref.shape)
        diff = float(np.abs(got - ref).max())
        assert run["steps"] == steps, f"{sampler}: {run['steps']} frames for {steps} steps"
        assert diff <= TOLERANCE, f"{sampler} label {label} w {w}: max |JS - Python| = {diff:.2e}"
        assert float(np.abs(ref).max()) > 0.5  # real pictures, not a degenerate all-zero case
