"""A variational autoencoder for 2-D data (Kingma & Welling, 2014).

Gaussian encoder ``q(z|x)`` and a Gaussian decoder ``p(x|z) = N(dec(z), sigma_x^2 I)`` with a
fixed observation std ``sigma_x`` (in normalised units); the loss is the negative ELBO
``|x - dec(z)|^2 / (2 sigma_x^2) + KL(q(z|x) || N(0, I))`` (constants dropped). Samples are
decoder means ``dec(z)``, ``z ~ N(0, I)``, as is usual; pass ``decoder_noise=True`` to add the
observation noise as well. Adam, lr 3e-3 (the diffusion model's rate; it also beat 1e-3
for the VAE in our checks).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .common import Toy2DModel, count_params, make_mlp, randn

__all__ = ["VAE"]


class VAE(Toy2DModel):
    kind = "vae"
    label = "VAE"

    def __init__(self, generator: torch.Generator, device: torch.device | str = "cpu", *,
                 hidden: int = 128, depth: int = 3, z_dim: int = 2, sigma_x: float = 0.1,
                 lr: float = 3e-3):
        super().__init__(device)
        self.z_dim = z_dim
        self.sigma_x = sigma_x
        self.encoder = make_mlp(2, hidden, depth, 2 * z_dim, nn.ReLU, generator)
        self.decoder = make_mlp(z_dim, hidden, depth, 2, nn.ReLU, generator)
        self.to(self.device)
        self.opt = torch.optim.Adam(self.parameters(), lr=lr)

    def param_counts(self) -> dict[str, int]:
        e, d = count_params(self.encoder), count_params(self.decoder)
        return {"encoder": e, "decoder": d, "total": e + d}

    def train_step(self, next_batch: Callable[[], torch.Tensor],
                   generator: torch.Generator) -> dict[str, float]:
        x = next_batch()
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        logvar = logvar.clamp(-12.0, 8.0)
        z = mu + torch.exp(0.5 * logvar) * randn(mu.shape, generator, self.device)
        recon = ((x - self.decoder(z)) ** 2).sum(1) / (2.0 * self.sigma_x**2)
        kl = 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar).sum(1)
        loss = (recon + kl).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.item(), "reconstruction": recon.mean().item(), "kl": kl.mean().item()}

    @torch.no_grad()
    def sample_normalised(self, n: int, generator: torch.Generator, *,
                          decoder_noise: bool = False) -> torch.Tensor:
        x = self.decoder(randn((n, self.z_dim), generator, self.device))
        if decoder_noise:
            x = x + self.sigma_x * randn(x.shape, generator, self.device)
        return x
