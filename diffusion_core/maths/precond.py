"""EDM preconditioning (Karras et al. 2022) and the matching training loss.

The denoiser works on the "variance exploding" view of any schedule:
``y = x_0 + sigma * n``. It returns an estimate of x_0:

    D(y, sigma) = c_skip(sigma) * y + c_out(sigma) * F(c_in(sigma) * y, c_noise(sigma))

with ``sigma_data`` the standard deviation of the clean data (0.5 for images in [-1, 1]).
A DDPM/DDIM state ``x_t = sqrt(ab) x_0 + sqrt(1-ab) eps`` maps to ``y = x_t / sqrt(ab)`` and
``sigma_t = sqrt((1 - ab) / ab)``, so one set of weights serves every schedule and T.
"""

from __future__ import annotations

import math
import os

import torch
from torch import nn

from diffusion_core.units import SIGMA_MAX, SIGMA_MIN

SIGMA_DATA = 0.5
SIGMA_MIN_NET = SIGMA_MIN
SIGMA_MAX_NET = SIGMA_MAX


def c_skip(sigma: torch.Tensor, sigma_data: float = SIGMA_DATA) -> torch.Tensor:
    return sigma_data**2 / (sigma**2 + sigma_data**2)


def c_out(sigma: torch.Tensor, sigma_data: float = SIGMA_DATA) -> torch.Tensor:
    return sigma * sigma_data / torch.sqrt(sigma**2 + sigma_data**2)


def c_in(sigma: torch.Tensor, sigma_data: float = SIGMA_DATA) -> torch.Tensor:
    return 1.0 / torch.sqrt(sigma**2 + sigma_data**2)


def c_noise(sigma: torch.Tensor) -> torch.Tensor:
    return torch.log(sigma) / 4.0


def loss_weight(sigma: torch.Tensor, sigma_data: float = SIGMA_DATA) -> torch.Tensor:
    """lambda(sigma) = 1 / c_out(sigma)^2: makes the raw network's target unit-variance."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


class EDMDenoiser(nn.Module):
    """Wraps a raw network F into the preconditioned denoiser D(y, sigma) -> x0_hat.

    Sigmas outside the trained range are clamped for the network input only
    (the skip/output scalings always use the true sigma), so sigma -> 0 is the identity.
    Gray inputs (C = 1) are replicated to the network's channels and averaged back.

    ``channels_last=True`` (off by default; or :meth:`use_channels_last`) stores the network's
    weights in channels-last memory order and feeds it channels-last inputs: the same numbers
    up to float rounding (about 1e-7), 12-30 % faster per call on CPUs through oneDNN
    (bench/speed.py). The weights then are not contiguous: turn it off before saving them.
    """

    def __init__(self, net: nn.Module, sigma_data: float = SIGMA_DATA, channels_last: bool = False):
        super().__init__()
        self.net = net
        self.sigma_data = sigma_data
        self.channels_last = False
        self.cpu_bf16 = False
        if channels_last:
            self.use_channels_last(True)

    def use_cpu_bf16(self, enable: bool = True) -> EDMDenoiser:
        """Run the network under bf16 autocast when the input is on a CPU (in place; returns
        self). Worth it only where the CPU does bf16 in hardware (AMX-BF16 / AVX512-BF16, see
        :func:`cpu_has_fast_bf16`): there it is the fast path; elsewhere oneDNN emulates bf16
        and it is several times slower (bench/results/speed.md). Outputs agree with fp32 to
        about 57 dB PSNR; the preconditioning around the network stays in fp32."""
        self.cpu_bf16 = bool(enable)
        return self

    def use_channels_last(self, enable: bool = True) -> EDMDenoiser:
        """Switch the channels-last speed option on or off (in place); returns self."""
        fmt = torch.channels_last if enable else torch.contiguous_format
        self.net.to(memory_format=fmt)
        self.channels_last = bool(enable)
        return self

    @property
    def channels(self) -> int:
        return int(getattr(self.net, "in_channels", 3))

    @property
    def num_classes(self) -> int:
        """How many class labels the network takes (0 = unconditional)."""
        net = getattr(self.net, "module", self.net)  # through DistributedDataParallel
        return int(getattr(net, "num_classes", 0))

    def forward(self, y: torch.Tensor, sigma, class_labels: torch.Tensor | None = None
                ) -> torch.Tensor:
        """x0_hat for ``y`` at ``sigma``; ``class_labels`` (N,) go to a conditional network
        unchanged (negative = no label); None calls the network without labels."""
        n, c = y.shape[:2]
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=y.device).reshape(-1)
        if sigma.numel() == 1:
            sigma = sigma.expand(n)
        s = sigma.to(torch.float32).reshape(-1, 1, 1, 1)
        s_net = s.clamp(SIGMA_MIN_NET, SIGMA_MAX_NET)
        x_in = y.float()
        gray_in = c == 1 and self.channels == 3
        if gray_in:
            x_in = x_in.expand(n, 3, *y.shape[2:])
        x_net = (c_in(s_net, self.sigma_data) * x_in).to(y.dtype)
        if self.channels_last:
            x_net = x_net.contiguous(memory_format=torch.channels_last)
        extra = () if class_labels is None else (class_labels,)
        if self.cpu_bf16 and y.device.type == "cpu":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                f = self.net(x_net, c_noise(s_net).reshape(-1), *extra)
        else:
            f = self.net(x_net, c_noise(s_net).reshape(-1), *extra)
        f = f.float()
        if self.channels_last:
            f = f.contiguous()
        if gray_in:
            f = f.mean(dim=1, keepdim=True)
        return (c_skip(s, self.sigma_data) * y.float() + c_out(s, self.sigma_data) * f).to(y.dtype)


def edm_loss(
    denoiser: EDMDenoiser, x0: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor,
    class_labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted denoising loss E[lambda(sigma) |D(x0 + sigma n, sigma) - x0|^2] (per-sample
    mean over pixels, then batch mean); ``class_labels`` go to a conditional network."""
    s = sigma.reshape(-1, 1, 1, 1)
    y = x0 + s * noise
    denoised = denoiser(y, sigma) if class_labels is None else denoiser(y, sigma, class_labels)
    w = loss_weight(s, denoiser.sigma_data)
    return (w * (denoised - x0) ** 2).mean()


def sample_training_sigmas(
    n: int, generator: torch.Generator, p_focus: float = 0.6,
    focus_range: tuple[float, float] = (0.02, 1.0),
    p_mean: float = -1.2, p_std: float = 1.2,
) -> torch.Tensor:
    """Noise levels for training: a mixture of

    * log-uniform over ``focus_range`` (probability ``p_focus``): the levels where photos are
      restored (sigma 2.5 .. 127 on the 0-255 scale), where we want the most accuracy;
    * EDM's log-normal(p_mean, p_std) over the whole diffusion range, clamped to
      [0.002, 80], so the same weights also serve generation from pure noise.
    """
    u = torch.rand(n, generator=generator)
    lo, hi = math.log(focus_range[0]), math.log(focus_range[1])
    focus = torch.exp(lo + (hi - lo) * torch.rand(n, generator=generator))
    wide = torch.exp(p_mean + p_std * torch.randn(n, generator=generator))
    wide = wide.clamp(SIGMA_MIN_NET, SIGMA_MAX_NET)
    return torch.where(u < p_focus, focus, wide)


def cpu_has_fast_bf16() -> bool:
    """True when this CPU computes bf16 in hardware (AMX tiles or AVX512-BF16), as torch sees
    it. A virtual machine may hide these units even on a CPU that has them (then False).
    ``DIFFUSION_LAB_CPU_BF16=1`` / ``0`` forces the answer."""

    forced = os.environ.get("DIFFUSION_LAB_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    import torch.cpu as tcpu

    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(tcpu, name, None)
        try:
            if fn is not None and fn():
                return True
        except Exception:  # noqa: BLE001 - a probe must never break loading a model
            continue
    return False
