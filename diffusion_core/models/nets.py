"""Raw networks F(x_in, c_noise) used inside the EDM preconditioning (see precond.py).

``DenoiserUNet`` is a small, fully convolutional U-Net built for CPU speed:

* the input is pixel-unshuffled 2x (RGB 256x256 -> 12 channels at 128x128), which cuts the
  cost of every layer by 4 while keeping all the information (as in FFDNet);
* the noise level enters twice: as a constant input map (as in FFDNet/DRUNet) and as a
  per-block channel bias from a small embedding MLP (as in DDPM U-Nets);
* residual blocks without normalisation (as in DRUNet), strided convolutions down,
  pixel-shuffle up, additive skips;
* any H, W: the input is reflect-padded to a multiple of ``size_multiple`` and cropped back;
* optionally (``num_classes > 0``) a class label: a learned embedding added to the noise
  embedding, with one extra "no label" entry (index ``num_classes``, or any negative label)
  so one network learns both the conditional and the unconditional prediction
  (classifier-free guidance, Ho & Salimans 2022). The embedding starts at zero, so a
  network fine-tuned from unconditional weights starts out predicting exactly as they did.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def pad_to_multiple(x: torch.Tensor, m: int) -> torch.Tensor:
    """Pad (N, C, H, W) at the bottom and right to multiples of m: reflected where the
    picture is big enough, else replicated (the caller crops back to H, W)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        mode = "reflect" if (ph < h and pw < w) else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x


class NoiseEmbedding(nn.Module):
    """Fourier features of c_noise followed by a two-layer MLP."""

    def __init__(self, dim: int, n_freq: int = 16):
        super().__init__()
        self.register_buffer(
            "freqs", torch.exp(torch.linspace(0.0, math.log(64.0), n_freq)), persistent=False
        )
        self.mlp = nn.Sequential(nn.Linear(2 * n_freq, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        a = c_noise.reshape(-1, 1).float() * self.freqs
        return self.mlp(torch.cat([torch.sin(a), torch.cos(a)], dim=1))


class ResBlock(nn.Module):
    def __init__(self, ch: int, emb_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, ch)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv1(x)) + self.emb(emb)[:, :, None, None]
        return x + self.conv2(F.relu(h))


class DenoiserUNet(nn.Module):
    """Fully convolutional U-Net. ``forward(x, c_noise, class_labels=None)``: x is
    (N, C, H, W), c_noise is (N,), class_labels (N,) integers (negative = no label) or None
    (no label). An unconditional network (``num_classes = 0``) takes no labels."""

    def __init__(
        self,
        in_channels: int = 3,
        base: int = 48,
        mults: tuple[int, ...] = (1, 2, 4),
        blocks: tuple[int, ...] = (2, 2, 2),
        emb_dim: int = 128,
        num_classes: int = 0,
    ):
        super().__init__()
        assert len(mults) == len(blocks)
        self.config = dict(
            in_channels=in_channels, base=base, mults=list(mults), blocks=list(blocks),
            emb_dim=emb_dim,
        )
        self.num_classes = int(num_classes)
        if self.num_classes > 0:  # unconditional configs (and weights) stay exactly as before
            self.config["num_classes"] = self.num_classes
            self.label_embed = nn.Embedding(self.num_classes + 1, emb_dim)
            nn.init.zeros_(self.label_embed.weight)
        self.in_channels = in_channels
        self.size_multiple = 2 * 2 ** (len(mults) - 1)
        chs = [base * m for m in mults]
        self.embed = NoiseEmbedding(emb_dim)
        self.head = nn.Conv2d(in_channels * 4 + 1, chs[0], 3, padding=1)
        self.enc = nn.ModuleList()
        self.down = nn.ModuleList()
        self.dec = nn.ModuleList()
        self.up = nn.ModuleList()
        for i, (c, n) in enumerate(zip(chs, blocks)):
            self.enc.append(nn.ModuleList([ResBlock(c, emb_dim) for _ in range(n)]))
            if i < len(chs) - 1:
                self.down.append(nn.Conv2d(c, chs[i + 1], 2, stride=2))
        for i in reversed(range(len(chs) - 1)):
            self.up.append(nn.Conv2d(chs[i + 1], chs[i] * 4, 1))
            self.dec.append(
                nn.ModuleList([ResBlock(chs[i], emb_dim) for _ in range(blocks[i])])
            )
        self.tail = nn.Conv2d(chs[0], in_channels * 4, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def label_embedding(self, class_labels: torch.Tensor | None, n: int,
                        device: torch.device) -> torch.Tensor:
        """(n, emb_dim) embedding of the labels; None or a negative label = "no label"."""
        if class_labels is None:
            labels = torch.full((n,), self.num_classes, dtype=torch.long, device=device)
        else:
            labels = torch.as_tensor(class_labels, device=device).reshape(-1).long()
            if labels.numel() == 1 and n > 1:
                labels = labels.expand(n)
            if labels.numel() != n:
                raise ValueError(f"{labels.numel()} class labels for {n} pictures")
            if bool((labels >= self.num_classes).any()):
                raise ValueError(f"class labels must be below {self.num_classes}")
            labels = torch.where(labels < 0, self.num_classes, labels)
        return self.label_embed(labels)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor,
                class_labels: torch.Tensor | None = None) -> torch.Tensor:
        n, c, h, w = x.shape
        x = pad_to_multiple(x, self.size_multiple)
        c_noise = c_noise.reshape(-1).to(x.dtype)
        if c_noise.numel() == 1 and n > 1:
            c_noise = c_noise.expand(n)
        emb = self.embed(c_noise)
        if self.num_classes > 0:
            emb = emb + self.label_embedding(class_labels, n, x.device).to(emb.dtype)
        elif class_labels is not None:
            raise ValueError("this network is unconditional: it takes no class labels")
        z = F.pixel_unshuffle(x, 2)
        noise_map = c_noise[:, None, None, None].expand(n, 1, z.shape[2], z.shape[3])
        z = self.head(torch.cat([z, noise_map.to(z.dtype)], dim=1))
        skips = []
        for i, blocks in enumerate(self.enc):
            for blk in blocks:
                z = blk(z, emb)
            if i < len(self.down):
                skips.append(z)
                z = self.down[i](z)
        for up, blocks in zip(self.up, self.dec):
            z = F.pixel_shuffle(up(z), 2) + skips.pop()
            for blk in blocks:
                z = blk(z, emb)
        out = F.pixel_shuffle(self.tail(F.relu(z)), 2)
        return out[:, :, :h, :w]


def build_network(config: dict) -> DenoiserUNet:
    cfg = dict(config)
    for k in ("mults", "blocks"):
        if k in cfg:
            cfg[k] = tuple(cfg[k])
    return DenoiserUNet(**cfg)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
