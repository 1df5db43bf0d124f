"""The denoiser: preconditioning identities, shapes, training smoke, resume, DDP, registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from diffusion_core.maths.precond import EDMDenoiser, c_in, c_noise, c_out, c_skip, edm_loss
from diffusion_core.models.nets import DenoiserUNet, build_network
from diffusion_core.training.train import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent
TINY_NET = {"in_channels": 3, "base": 8, "mults": [1, 2], "blocks": [1, 1], "emb_dim": 16}


class ZeroNet(torch.nn.Module):
    in_channels = 3

    def forward(self, x, c):
        return torch.zeros_like(x)


def D2_out_differs(net) -> bool:
    y = torch.randn(1, 3, 8, 8)
    return not torch.allclose(EDMDenoiser(net)(y, 1.0), c_skip(torch.tensor(1.0)) * y)


def test_preconditioning_identities():
    D = EDMDenoiser(ZeroNet())
    y = torch.randn(2, 3, 5, 7)
    for s in (0.01, 0.3, 2.0, 50.0):
        out = D(y, s)
        assert torch.allclose(out, c_skip(torch.tensor(s)) * y, atol=1e-6)
    # sigma -> 0: identity for ANY network (c_skip -> 1, c_out -> 0)
    net = DenoiserUNet(base=8, mults=(1, 2), blocks=(1, 1), emb_dim=16)
    with torch.no_grad():
        for p in net.tail.parameters():  # make the (zero-initialised) output layer non-trivial
            p.normal_(0, 0.1)
    assert D2_out_differs(net)
    D2 = EDMDenoiser(net)
    assert torch.allclose(D2(y, 1e-7), y, atol=1e-5)
    s = torch.tensor([0.1, 1.0, 10.0])
    # EDM's defining properties: unit-variance input and target for sigma_data = 0.5
    assert torch.allclose(c_in(s) ** 2 * (0.25 + s**2), torch.ones(3))
    assert torch.allclose(c_skip(s) ** 2 * s**2 + (1 - c_skip(s)) ** 2 * 0.25, c_out(s) ** 2)
    assert torch.allclose(c_noise(torch.tensor(1.0)), torch.tensor(0.0))


@pytest.mark.parametrize("shape", [(1, 3, 17, 23), (2, 3, 32, 32), (1, 1, 9, 31), (1, 3, 1, 5)])
def test_network_keeps_shape_any_size_gray_and_rgb(shape):
    net = build_network(TINY_NET)
    D = EDMDenoiser(net)
    y = torch.randn(shape)
    with torch.no_grad():
        out = D(y, torch.full((shape[0],), 0.5))
    assert out.shape == y.shape and torch.isfinite(out).all()


def _tiny_cfg(**kw) -> TrainConfig:
    base = dict(name="tiny", net=TINY_NET, data=["deadleaves"], steps=20, batch=4, patch=32,
                lr=2e-3, lr_warmup=1, ckpt_every=5, log_every=5, eval_every=0,
                sample_every=0, seed=3, threads=1)
    base.update(kw)
    return TrainConfig(**base)


def _fixed_batch_loss(net, cfg):
    """Loss on one fixed batch drawn from the training distribution (fixed seed)."""
    from diffusion_core.training.train import make_batch_source

    fn, _ = make_batch_source(cfg, log=lambda *_: None)
    g = torch.Generator().manual_seed(12345)
    x, _gray = fn(16, g)
    sigma = torch.full((16,), 0.3)
    n = torch.randn(x.shape, generator=g)
    with torch.no_grad():
        return float(edm_loss(EDMDenoiser(net), x, sigma, n))


def test_training_smoke_lowers_loss(tmp_path, monkeypatch):
    import diffusion_core.training.data as data

    monkeypatch.setattr(data, "dead_leaves", _fast_leaves(data.dead_leaves))
    cfg = _tiny_cfg(steps=60, ema_decay=0.8, p_focus=1.0, focus_lo=0.2, focus_hi=0.4)
    torch.manual_seed(cfg.seed)
    before = _fixed_batch_loss(build_network(cfg.net), cfg)
    train(cfg, tmp_path / "run", log=lambda *_: None)
    from diffusion_core.models.registry import ModelInfo, load_denoiser

    info = ModelInfo("tiny", tmp_path / "run" / "export", "user",
                     json.loads((tmp_path / "run" / "export" / "card.json").read_text()))
    den = load_denoiser(info)
    after = _fixed_batch_loss(den.net, cfg)
    assert after < before * 0.9, (before, after)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 60


def _fast_leaves(orig):
    def f(size, rng, **kw):
        return orig(min(size, 48), rng, n_shapes=60)

    return f


def _stop_after(n: int):
    """A ``should_stop`` that lets n steps run, then asks to stop."""
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > n

    return stop


def _assert_same_checkpoints(dir_a, dir_b, steps: int) -> None:
    a = torch.load(dir_a / "checkpoint.pt", weights_only=True)
    b = torch.load(dir_b / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == steps
    for k in a["net"]:
        assert torch.allclose(a["net"][k], b["net"][k], atol=1e-6), k
        assert torch.allclose(a["ema"][k], b["ema"][k], atol=1e-6), k


def test_resume_reproduces_uninterrupted_run(tmp_path, monkeypatch):
    import diffusion_core.training.data as data

    monkeypatch.setattr(data, "dead_leaves", _fast_leaves(data.dead_leaves))
    cfg = _tiny_cfg(steps=12)
    train(cfg, tmp_path / "a", log=lambda *_: None)
    # interrupted after 7 steps (the checkpoint is at 5 and at the stop), then resumed
    part = train(cfg, tmp_path / "b", should_stop=_stop_after(7), log=lambda *_: None)
    assert part["stopped"] and part["step"] == 7
    train(cfg, tmp_path / "b", resume=True, log=lambda *_: None)
    _assert_same_checkpoints(tmp_path / "a", tmp_path / "b", 12)


@pytest.mark.system
def test_loader_processes_give_the_same_training(tmp_path, monkeypatch):
    # batches built by 2 loader processes (in step order) train exactly what the
    # in-process batches train, also across a stop and a resume
    import diffusion_core.training.data as data

    monkeypatch.setattr(data, "dead_leaves", _fast_leaves(data.dead_leaves))
    train(_tiny_cfg(steps=9), tmp_path / "a", log=lambda *_: None)
    cfg = _tiny_cfg(steps=9, workers=2)
    assert train(cfg, tmp_path / "b", should_stop=_stop_after(4), log=lambda *_: None)["step"] == 4
    train(cfg, tmp_path / "b", resume=True, log=lambda *_: None)
    _assert_same_checkpoints(tmp_path / "a", tmp_path / "b", 9)
    # and the batches really differ from step to step (not one batch repeated)
    from diffusion_core.training.train import _batches, make_batch_source

    fn, _ = make_batch_source(cfg, log=lambda *_: None)
    it = _batches(cfg, fn, 0, 0, pin=False)
    first, second = next(it), next(it)
    assert not torch.equal(first[0], second[0])


@pytest.mark.system
def test_resume_after_kill(tmp_path):
    """kill -9 mid-run loses at most the steps since the last checkpoint."""
    cfg = {**_tiny_cfg(steps=400, ckpt_every=3).__dict__}
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(cfg))
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "diffusion_core", "train", "--config", str(cfg_path),
           "--out", str(tmp_path / "run")]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ck = tmp_path / "run" / "checkpoint.pt"
    import time

    deadline = time.time() + 120
    while time.time() < deadline and not ck.exists():
        time.sleep(0.2)
    time.sleep(1.0)
    p.kill()
    p.wait()
    state = torch.load(ck, weights_only=True)  # never half-written (atomic rename)
    assert state["step"] >= 3
    r = subprocess.run(cmd + ["--resume", "--steps", str(state["step"] + 3)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert torch.load(ck, weights_only=True)["step"] == state["step"] + 3


@pytest.mark.system
def test_torchrun_gloo_two_ranks_identical_weights(tmp_path):
    cfg = {**_tiny_cfg(steps=4, ckpt_every=2).__dict__}
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(cfg))
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1",
               DIFFUSION_LAB_DUMP_RANK_WEIGHTS=str(tmp_path / "rank"))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "diffusion_core", "train", "--config", str(cfg_path), "--out",
           str(tmp_path / "run"), "--device", "cpu"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    w0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert set(w0) == set(w1)
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    card = json.loads((tmp_path / "run" / "export" / "card.json").read_text())
    assert card["batch"] == 8 and card["steps"] == 4


def test_cpu_speed_options_keep_the_numbers(monkeypatch):
    """channels-last and bf16 autocast change speed, not results: fp32 channels-last agrees
    to float rounding; bf16 to about 50 dB; the preconditioning identities still hold."""
    from diffusion_core.maths.precond import cpu_has_fast_bf16
    from diffusion_core.models import registry
    from diffusion_core.tasks.metrics import psnr

    torch.manual_seed(0)
    net = DenoiserUNet(**TINY_NET).eval()
    with torch.no_grad():  # (the output layer starts at zero: give every weight a value)
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    den = EDMDenoiser(net)
    y = torch.randn(2, 3, 21, 30) * 0.5
    with torch.inference_mode():
        ref = den(y, 0.3)
        den.use_channels_last()
        cl = den(y, 0.3)
        den.use_cpu_bf16()
        bf = den(y, 0.3)
        den.use_channels_last(False).use_cpu_bf16(False)
        back = den(y, 0.3)
    assert torch.allclose(cl, ref, atol=1e-5) and torch.equal(back, ref)
    assert bf.dtype == torch.float32 and not torch.equal(bf, ref)
    assert min(psnr(bf[i], ref[i]) for i in range(2)) > 40
    # the app's shared copy: bf16 only where the CPU has it (forced here both ways)
    monkeypatch.setenv("DIFFUSION_LAB_CPU_BF16", "1")
    assert cpu_has_fast_bf16() and registry.get_denoiser("digits").cpu_bf16
    monkeypatch.setenv("DIFFUSION_LAB_CPU_BF16", "0")
    d0 = registry.get_denoiser("digits")
    assert not cpu_has_fast_bf16() and not d0.cpu_bf16 and d0.channels_last
    assert not registry.get_denoiser("digits", channels_last=False).channels_last
