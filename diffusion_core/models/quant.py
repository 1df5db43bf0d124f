"""8-bit CPU inference of the photo denoiser at one known noise level ("fast CPU mode").

For a fixed sigma the :class:`~diffusion_core.models.netsDenoiserUNet` is a plain chain of
convolutions, ReLUs, residual adds and pixel (un)shuffles: the noise embedding only adds a
constant per-channel bias inside every residual block. :class:`FixedSigmaBody` rewrites the
network that way (the bias becomes a depthwise 1x1 convolution with unit weights, so the
result is the same numbers in float32), and :func:`quantize_body` turns it into int8
convolutions through PyTorch's own post-training quantization (FX graph mode, the x86/fbgemm
engine): weights per output channel, activations per tensor with min/max ranges measured on
noisy crops of the photos bundled with scikit-image. What stays in float32 was chosen by
measurement (noisy crops that are not calibration crops: scikit-learn's two photos and corners
of four scikit-image photos, sigma 25; loss to the float model with the 106,999-step weights, in
brackets with the 97,800-step ones, where the layers were chosen):

* the first convolution (it reads the noisy picture) and the last (it writes the correction),
  ``FLOAT_LAYERS``; int8 everywhere else: 0.078 dB (0.090);
* the residual and skip additions (``FLOAT_ADDS``: the stream between blocks is not re-rounded
  to 8 bits after every block, the convolutions still read it in 8 bits): 0.040 dB (0.051);
* the second convolution of the last residual block (``"last.conv2"``: its output reaches the
  tail through one addition and a ReLU, so its rounding is not averaged away by later layers;
  kept in float32 one at a time, none of the 27 other convolutions lowered the loss by more
  than 0.006 dB, this one by 0.012): 0.034 dB (0.039).

The additions and that one convolution cost time: 1024x1024, 2 threads, AMD EPYC, medians of
7 calls of the quantized network: 276 ms with int8 additions, 456 ms with float additions,
476 ms with the last convolution too (float32 model, channels-last: about 1,080 ms). The defaults are the
last row: on CBSD68 at sigma 25 it is the setting that beats BM3D, where the faster ones do not
(bench/results).

On CPUs with VNNI (AVX512-VNNI / AVX-VNNI) the activations use the full 8 bits; elsewhere
7 bits (``reduce_range``), which avoids the int16 overflow of the older AVX2 kernels.

:class:`Int8Denoiser` has the denoiser's contract ``D(y, sigma) -> x0_hat`` and builds
(and caches) one quantized body per sigma, so it fits one-call denoising with a known noise
level (the evaluator, the Repair page's "in one go"); a sampler that visits many noise
levels is better served by the float model. Measured quality and speed:
``python -m diffusion_core evaluate denoise --int8 ...`` (bench/results).
"""

from __future__ import annotations

import copy
import operator
import os
import platform
import threading
import warnings
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from diffusion_core.maths.precond import SIGMA_MAX_NET, SIGMA_MIN_NET, c_in, c_noise, c_out, c_skip
from diffusion_core.media.photos import bundled_photo_paths, dead_leaves, read_rgb_uint8
from diffusion_core.models.nets import DenoiserUNet, pad_to_multiple
from diffusion_core.system.cpuinfo import cpu_flags
from diffusion_core.units import from_255

CL = torch.channels_last
# kept in float32 (module names in FixedSigmaBody, see FixedSigmaBody.layer_name): the head
# reads the noisy picture, the tail writes the correction, the last block's second convolution
# feeds the tail (see the module docstring for the measurements)
FLOAT_LAYERS = ("head", "tail", "last.conv2")
# residual and skip additions in float32 (the stream between blocks not re-rounded to 8 bits
# after every block): 0.04 dB of the loss to the float model, 1.65x the time
FLOAT_ADDS = True


def quant_engine() -> str | None:
    """The quantized engine for x86 CPUs in this torch build, or None."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return None
    engines = torch.backends.quantized.supported_engines
    for name in ("x86", "fbgemm"):
        if name in engines:
            return name
    return None


def cpu_has_vnni() -> bool:
    """True when the CPU has 8-bit dot-product instructions (VNNI), as torch sees it;
    ``/proc/cpuinfo`` where torch has no probe. ``DIFFUSION_LAB_VNNI=1`` / ``0`` forces it."""

    forced = os.environ.get("DIFFUSION_LAB_VNNI")
    if forced in ("0", "1"):
        return forced == "1"
    probe = getattr(torch.cpu, "_is_vnni_supported", None)
    if probe is not None:
        try:
            return bool(probe())
        except Exception:  # noqa: BLE001 - fall through to the flags
            pass
    return bool(cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


def int8_supported(denoiser) -> tuple[bool, str]:
    """(ok, reason): can :class:`Int8Denoiser` run this denoiser here?"""
    if quant_engine() is None:
        return False, "8-bit mode needs an x86 CPU with PyTorch's fbgemm/x86 engine."
    net = getattr(denoiser, "net", None)
    if not isinstance(net, DenoiserUNet):
        return False, "8-bit mode is available for this project's own networks only."
    return True, ""


class FixedSigmaBody(nn.Module):
    """The network from its head input to its tail output with c_noise fixed.

    Input: the pixel-unshuffled, c_in-scaled picture with the constant noise-level map as the
    last channel, (N, 4*C + 1, H/2, W/2). Output: the tail's (N, 4*C, H/2, W/2) before the
    final pixel shuffle. In float32 it computes exactly what ``DenoiserUNet.forward`` does.
    """

    def __init__(self, net: DenoiserUNet, c_noise_value: float):
        super().__init__()
        with torch.no_grad():
            emb = net.embed(torch.tensor([float(c_noise_value)]))
        self.head = copy.deepcopy(net.head)
        self.tail = copy.deepcopy(net.tail)
        self.down = copy.deepcopy(net.down)
        self.up = copy.deepcopy(net.up)

        def blocks(group: nn.ModuleList) -> nn.ModuleList:
            out = nn.ModuleList()
            for blk in group:
                m = nn.Module()
                m.conv1 = copy.deepcopy(blk.conv1)
                m.conv2 = copy.deepcopy(blk.conv2)
                with torch.no_grad():
                    b = blk.emb(emb)[0]
                    ch = b.numel()
                    m.bias = nn.Conv2d(ch, ch, 1, groups=ch)
                    m.bias.weight.fill_(1.0)
                    m.bias.bias.copy_(b)
                out.append(m)
            return out

        self.enc = nn.ModuleList([blocks(g) for g in net.enc])
        self.dec = nn.ModuleList([blocks(g) for g in net.dec])
        self.n_enc = [len(g) for g in net.enc]
        self.n_dec = [len(g) for g in net.dec]
        self.requires_grad_(False)

    def layer_name(self, name: str) -> str:
        """A module name; ``"last.conv1"`` / ``"last.conv2"`` name the convolutions of the
        last residual block (the one whose output reaches the tail)."""
        if name.startswith("last."):
            groups = [(i, n) for i, n in enumerate(self.n_dec) if n]
            if not groups:
                raise ValueError("this network has no decoder blocks")
            i, n = groups[-1]
            return f"dec.{i}.{n - 1}.{name.split('.', 1)[1]}"
        return name

    @staticmethod
    def _block(b: nn.Module, z: torch.Tensor) -> torch.Tensor:
        # ResBlock: z + conv2(relu(relu(conv1(z)) + bias))
        return z + b.conv2(F.relu(b.bias(F.relu(b.conv1(z)))))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = self.head(z)
        skips = []
        for i in range(len(self.n_enc)):
            for j in range(self.n_enc[i]):
                z = self._block(self.enc[i][j], z)
            if i < len(self.down):
                skips.append(z)
                z = self.down[i](z)
        for i in range(len(self.n_dec)):
            # channels-last after the shuffle: mixed memory orders make int8 adds slow
            z = F.pixel_shuffle(self.up[i](z), 2).contiguous(memory_format=CL) + skips.pop()
            for j in range(self.n_dec[i]):
                z = self._block(self.dec[i][j], z)
        return self.tail(F.relu(z))


def body_input(net: DenoiserUNet, y: torch.Tensor, sigma: float) -> tuple[torch.Tensor, tuple]:
    """(z, (h, w)): the body's input for pictures y (N, C, H, W) at noise level sigma
    (padded as ``DenoiserUNet.forward`` pads). Gray input is replicated to RGB."""
    n, c, h, w = y.shape
    if c == 1 and net.in_channels == 3:
        y = y.expand(n, 3, h, w)
    s_net = min(max(float(sigma), SIGMA_MIN_NET), SIGMA_MAX_NET)
    s = torch.tensor(s_net, dtype=torch.float32)
    x = c_in(s) * y.float()
    z = F.pixel_unshuffle(pad_to_multiple(x, net.size_multiple), 2)
    z = torch.cat([z, torch.full_like(z[:, :1], float(c_noise(s)))], dim=1)
    return z.contiguous(memory_format=CL), (h, w)


def body_output(f: torch.Tensor, y: torch.Tensor, sigma: float, hw: tuple) -> torch.Tensor:
    """D(y, sigma) from the body's output f: shuffle back, crop, skip/output scalings."""
    h, w = hw
    f = F.pixel_shuffle(f.float().contiguous(), 2)[:, :, :h, :w]
    if y.shape[1] == 1 and f.shape[1] == 3:
        f = f.mean(dim=1, keepdim=True)
    s = torch.tensor(float(sigma), dtype=torch.float32)
    return (c_skip(s) * y.float() + c_out(s) * f).to(y.dtype)


def calibration_pictures(channels: int = 3, size: int = 128, count: int = 8) -> list[torch.Tensor]:
    """Clean (1, C, size, size) crops in [-1, 1] for measuring activation ranges: centre
    crops of the photos bundled with scikit-image/scikit-learn, topped up with synthetic
    dead-leaves pictures (fixed seed) where fewer photos are installed."""

    pics = []
    for p in bundled_photo_paths():
        if len(pics) >= count:
            break
        try:
            a = read_rgb_uint8(p)
        except Exception:  # noqa: BLE001 - an unreadable bundled file is skipped
            continue
        hh, ww = a.shape[:2]
        if min(hh, ww) < size:
            continue
        top, left = (hh - size) // 2, (ww - size) // 2
        pics.append(a[top:top + size, left:left + size])
    rng = np.random.default_rng(0)
    while len(pics) < count:
        pics.append(dead_leaves(size, rng))
    out = []
    for a in pics:
        x = from_255(torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None])
        out.append(x.mean(dim=1, keepdim=True) if channels == 1 else x)
    return out


def quantize_body(net: DenoiserUNet, sigma: float, calibration: list[torch.Tensor] | None = None,
                  full_range: bool | None = None, seed: int = 0,
                  float_layers: tuple[str, ...] = FLOAT_LAYERS,
                  float_adds: bool = FLOAT_ADDS) -> nn.Module:
    """The int8 body of ``net`` for noise level ``sigma`` ([-1, 1] units).

    ``calibration``: clean pictures (1, C, H, W) in [-1, 1]; noise of level sigma is added
    (seeded) before the ranges are measured. ``full_range``: 8-bit activations (default: on
    CPUs with VNNI), else 7-bit. ``float_layers`` / ``float_adds``: what stays float32."""
    from torch.ao.quantization import QConfig, QConfigMapping
    from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    engine = quant_engine()
    if engine is None:
        raise RuntimeError("No quantized engine for this CPU.")
    torch.backends.quantized.engine = engine
    if full_range is None:
        full_range = cpu_has_vnni()
    s_net = min(max(float(sigma), SIGMA_MIN_NET), SIGMA_MAX_NET)
    body = FixedSigmaBody(net, float(c_noise(torch.tensor(s_net)))).eval().to(memory_format=CL)
    act = MinMaxObserver.with_args(dtype=torch.quint8, reduce_range=not full_range)
    wt = PerChannelMinMaxObserver.with_args(dtype=torch.qint8,
                                            qscheme=torch.per_channel_symmetric)
    qmap = QConfigMapping().set_global(QConfig(activation=act, weight=wt))
    for name in float_layers:
        qmap = qmap.set_module_name(body.layer_name(name), None)
    if float_adds:  # the residual stream: every add in float32, the convolutions int8
        qmap = qmap.set_object_type(operator.add, None).set_object_type(torch.add, None)
    pics = calibration if calibration is not None else calibration_pictures(net.in_channels)
    gen = torch.Generator().manual_seed(int(seed))
    inputs = []
    for x in pics:
        noisy = x + float(sigma) * torch.randn(x.shape, generator=gen)
        inputs.append(body_input(net, noisy, sigma)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation notes about torchao
        prepared = prepare_fx(body, qmap, example_inputs=(inputs[0],))
        with torch.inference_mode():
            for z in inputs:
                prepared(z)
        q = convert_fx(prepared)
    q.eval()
    return q


class Int8Denoiser:
    """``D(y, sigma)`` through int8 bodies, one per noise level (cached, thread-safe).

    Same inputs and outputs as :class:`~diffusion_core.maths.precondEDMDenoiser` on a CPU: y is
    (N, C, H, W) in [-1, 1] plus noise, sigma a float or a tensor (one value, or one per
    picture). A body for a new sigma is built on first use (calibration on a few small crops).
    """

    def __init__(self, denoiser, max_cached: int = 4,
                 calibration: list[torch.Tensor] | None = None):
        ok, why = int8_supported(denoiser)
        if not ok:
            raise ValueError(why)
        self.net: DenoiserUNet = denoiser.net
        self.max_cached = max_cached
        self.calibration = calibration
        self._bodies: OrderedDict[float, nn.Module] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def channels(self) -> int:
        return self.net.in_channels

    @staticmethod
    def _key(sigma) -> float:
        # the same key for a Python float and the float32 tensor made from it
        return round(float(torch.tensor(float(sigma), dtype=torch.float32)), 6)

    def body(self, sigma: float) -> nn.Module:
        """The int8 network for this noise level (built on first use, then cached)."""
        key = self._key(sigma)
        with self._lock:
            if key in self._bodies:
                self._bodies.move_to_end(key)
                return self._bodies[key]
            q = quantize_body(self.net, key, self.calibration)
            self._bodies[key] = q
            while len(self._bodies) > self.max_cached:
                self._bodies.popitem(last=False)
            return q

    def __call__(self, y: torch.Tensor, sigma) -> torch.Tensor:
        if y.device.type != "cpu":
            raise ValueError("8-bit mode runs on the CPU only.")
        sig = torch.as_tensor(sigma, dtype=torch.float32).reshape(-1)
        if sig.numel() > 1 and not bool((sig == sig[0]).all()):
            return torch.cat([self(y[i:i + 1], sig[i]) for i in range(y.shape[0])])
        s = float(sig[0])
        body = self.body(s)
        with torch.inference_mode():
            z, hw = body_input(self.net, y, s)
            return body_output(body(z), y, s, hw)
